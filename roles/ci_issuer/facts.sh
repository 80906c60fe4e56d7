# ci_issuer: the CI issuer's unit (enabled, active), whether the host's python3 has the libraries it runs on
# (Debian's python3-jwt and python3-cryptography), what of it is on the host (its folders, the unit file: with
# no trust in the inventory, what is there is taken away) and the files in its folder.
# In: BKOPS_CI_UNIT, BKOPS_CI_ETC, BKOPS_CI_CODE (set in front of this script, quoted).
echo @@ci_unit; systemctl is-enabled "$BKOPS_CI_UNIT" 2>/dev/null; systemctl is-active "$BKOPS_CI_UNIT" 2>/dev/null || true
# (where Debian's packages put them: a file test, not a Python start, which would cost every run of every host)
echo @@ci_python; [ -f /usr/lib/python3/dist-packages/jwt/__init__.py ] && \
  [ -f /usr/lib/python3/dist-packages/cryptography/__init__.py ] && command -v python3 >/dev/null && echo ok; true
echo @@ci_present
for f in "/etc/systemd/system/$BKOPS_CI_UNIT.service" "$BKOPS_CI_ETC" "$BKOPS_CI_CODE"; do [ -e "$f" ] && echo "$f"; done
echo @@ci_etc; ls -1A "$BKOPS_CI_ETC" 2>/dev/null; true
