# prune, for one daemon's timer (BKOPS_UNIT): which of its unit files are installed, and whether the timer is
# enabled and active; the default instance (BKOPS_CENSUS) also lists the tenants' timers found on the host
# (buildkit-ops-prune-TENANT), wanted or not.
# In: BKOPS_UNIT, BKOPS_CENSUS (set in front of this script, quoted).
echo @@prune_units
for f in "/etc/systemd/system/$BKOPS_UNIT.service" "/etc/systemd/system/$BKOPS_UNIT.timer"; do
  [ -f "$f" ] && echo "$f"
done
echo @@prune_timer; systemctl is-enabled "$BKOPS_UNIT.timer" 2>/dev/null; systemctl is-active "$BKOPS_UNIT.timer" 2>/dev/null || true
if [ -n "$BKOPS_CENSUS" ]; then
  echo @@prune_tenant_timers
  for f in /etc/systemd/system/buildkit-ops-prune-*.timer; do [ -f "$f" ] && echo "${f##*/}"; done
fi
