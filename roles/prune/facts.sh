# prune: which of its units are installed, and whether the timer is enabled and active (the fleet daemon's), and
# the same of each tenant daemon's timer (buildkit-ops-prune-TENANT)
echo @@prune_units
for f in /etc/systemd/system/buildkit-ops-prune.service /etc/systemd/system/buildkit-ops-prune.timer; do
  [ -f "$f" ] && echo "$f"
done
echo @@prune_timer; systemctl is-enabled buildkit-ops-prune.timer 2>/dev/null; systemctl is-active buildkit-ops-prune.timer 2>/dev/null || true
echo @@prune_tenant_units
for f in /etc/systemd/system/buildkit-ops-prune-*.service /etc/systemd/system/buildkit-ops-prune-*.timer; do
  [ -f "$f" ] || continue
  u=${f##*/}
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null) $(systemctl is-active "$u" 2>/dev/null)"
done
