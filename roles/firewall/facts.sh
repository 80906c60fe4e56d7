# firewall: is ufw there, its status and defaults, our and others' rules, and whether it filters IPv6.
# `ufw` is a Python program (two runs cost more than the rest of the facts): its output is cached
# (facts_cache.sh) on its configuration files and on the rules the kernel has loaded (`ufw status` reads both).
echo @@ufw_present; command -v ufw >/dev/null 2>&1 && echo yes || echo no
echo @@ipset_present; command -v ipset >/dev/null 2>&1 && echo yes || echo no
# the clients' set (client_set.py): its members as written, as the kernel has them, our rules, and the hook
echo @@fw_members; cat /etc/buildkit-ops/firewall/clients 2>/dev/null || true
echo @@fw_set; { ipset save bkops-clients4; ipset save bkops-clients6; } 2>/dev/null | sed -n 's/^add [^ ]* //p'
echo @@fw_set_rules; { iptables -w -S ufw-before-input; ip6tables -w -S ufw6-before-input; } 2>/dev/null |
  sed -n 's/^-A \([^ ]*\) .*--comment "\{0,1\}\(buildkit-ops-clients[^" ]*\).*/\1 \2/p'
echo @@fw_hooked; [ -x /etc/ufw/after.init ] && grep -qF '/etc/buildkit-ops/firewall/ufw-after.sh "$1"' \
  /etc/ufw/after.init && echo yes || echo no
echo @@ufw_ipv6; sed -n 's/^IPV6=//p' /etc/default/ufw 2>/dev/null | tail -1
_in=$(cat /etc/ufw/ufw.conf /etc/default/ufw /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null | sha256sum)
_kernel=$( { iptables -w -S ufw-user-input; ip6tables -w -S ufw6-user-input; } 2>&1 | sha256sum)
bkops_cached "firewall $(stat -c '%i %Y' /usr/sbin/ufw 2>/dev/null) $_in $_kernel" sh -c '
echo @@ufw_status; ufw status verbose 2>/dev/null | head -4
echo @@ufw_rules; ufw show added 2>/dev/null | grep "^ufw " || true'
