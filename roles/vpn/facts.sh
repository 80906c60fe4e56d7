# vpn: WireGuard on this machine: its tools, the kernel's module or a tun device for wireguard-go, the public key
# of the key pair it made, its tunnel's service and peers. Never the private key: `wg show dump`'s first line
# (the interface's, which holds it) is left out.
# In: BKOPS_VPN_IF, BKOPS_VPN_KEY (set in front of this script, quoted).
echo @@vpn_tools; for t in wg wg-quick wireguard-go; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true
echo @@vpn_kernel; { [ -d /sys/module/wireguard ] || modprobe -n wireguard 2>/dev/null; } && echo yes; true
echo @@vpn_tun; [ -c /dev/net/tun ] && echo yes; true
echo @@vpn_public; [ -s "$BKOPS_VPN_KEY" ] && wg pubkey < "$BKOPS_VPN_KEY" 2>/dev/null; true
echo @@vpn_active; systemctl is-active "wg-quick@$BKOPS_VPN_IF" 2>/dev/null; true
echo @@vpn_port; wg show "$BKOPS_VPN_IF" listen-port 2>/dev/null; true
echo @@vpn_in_force; wg show "$BKOPS_VPN_IF" public-key 2>/dev/null; true
echo @@vpn_now; date +%s
echo @@vpn_peers; wg show "$BKOPS_VPN_IF" dump 2>/dev/null | tail -n +2; true
