# firewall: is ufw there, its status and defaults, our and others' rules, and whether it filters IPv6.
# `ufw` is a Python program (two runs cost more than the rest of the facts): its output is cached
# (facts_cache.sh) on its configuration files and on the rules the kernel has loaded (`ufw status` reads both).
echo @@ufw_present; command -v ufw >/dev/null 2>&1 && echo yes || echo no
echo @@ufw_ipv6; sed -n 's/^IPV6=//p' /etc/default/ufw 2>/dev/null | tail -1
_in=$(cat /etc/ufw/ufw.conf /etc/default/ufw /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null | sha256sum)
_kernel=$( { iptables -w -S ufw-user-input; ip6tables -w -S ufw6-user-input; } 2>&1 | sha256sum)
bkops_cached "firewall $(stat -c '%i %Y' /usr/sbin/ufw 2>/dev/null) $_in $_kernel" sh -c '
echo @@ufw_status; ufw status verbose 2>/dev/null | head -4
echo @@ufw_rules; ufw show added 2>/dev/null | grep "^ufw " || true'
