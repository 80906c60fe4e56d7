# firewall: is ufw there, its status and defaults, our and others' rules, and whether it filters IPv6
echo @@ufw_present; command -v ufw >/dev/null 2>&1 && echo yes || echo no
echo @@ufw_status; ufw status verbose 2>/dev/null | head -4
echo @@ufw_rules; ufw show added 2>/dev/null | grep '^ufw ' || true
echo @@ufw_ipv6; sed -n 's/^IPV6=//p' /etc/default/ufw 2>/dev/null | tail -1
