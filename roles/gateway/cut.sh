# gateway: end the open connections of revoked certificates (the handler after a CRL change). The CRL stops the
# next handshake; a connection already open goes on in HAProxy (the old worker's too, after a reload) until this
# ends it: the newest `connection` line of each address (connections.lua) says whose certificate holds it, and
# `ss -K` closes the sockets of the revoked ones in the kernel, whichever worker holds them. A connection of
# another client, also from the same address, is left alone.
# In: BKOPS_PORT, BKOPS_REVOKED (serials, lower-case hex without leading zeros, space-separated).
set -u
n=0
for addr in $(docker logs buildkit-gateway 2>&1 | awk -v revoked=" $BKOPS_REVOKED " '
    $1 == "connection" {
      serial = ""; addr = ""
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^serial=/) serial = tolower(substr($i, 8))
        if ($i ~ /^addr=/) addr = substr($i, 6)
      }
      sub(/^0+/, "", serial)
      if (addr != "") owner[addr] = serial
    }
    END { for (a in owner) if (owner[a] != "" && index(revoked, " " owner[a] " ")) print a }'); do
  ip=${addr%:*} port=${addr##*:}
  case "$ip" in *:*) ip="[$ip]" ;; esac
  case "$port" in ''|*[!0-9]*) continue ;; esac
  k=$(ss -K -tnH state established "( sport = :$BKOPS_PORT and dst $ip and dport = :$port )" | wc -l)
  n=$((n + k))
done
echo "@@cut"
echo "$n"
