# ci_issuer: the CI issuer's unit (enabled, active), whether the host's python3 has the libraries it runs on
# (Debian's python3-jwt and python3-cryptography), what of it is on the host (its folders, the unit file: with
# no trust in the inventory, what is there is taken away) and the files in its folder.
# In: BKOPS_CI_UNIT, BKOPS_CI_ETC, BKOPS_CI_CODE (set in front of this script, quoted).
echo @@ci_unit; systemctl is-enabled "$BKOPS_CI_UNIT" 2>/dev/null; systemctl is-active "$BKOPS_CI_UNIT" 2>/dev/null || true
echo @@ci_python; python3 -c 'import jwt, cryptography; print("ok")' 2>/dev/null || true
echo @@ci_present
for f in "/etc/systemd/system/$BKOPS_CI_UNIT.service" "$BKOPS_CI_ETC" "$BKOPS_CI_CODE"; do [ -e "$f" ] && echo "$f"; done
echo @@ci_etc; ls -1A "$BKOPS_CI_ETC" 2>/dev/null; true
