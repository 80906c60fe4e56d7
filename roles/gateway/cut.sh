# gateway: end the open connections of revoked certificates (the handler after a CRL change). The CRL stops the
# next handshake; a connection already open goes on in HAProxy (the old worker's too, after a reload) until this
# ends it: the newest `connection` line of each address (connections.lua) says whose certificate holds it, and
# `ss -K` closes the sockets of the revoked ones in the kernel, whichever worker holds them. A connection of
# another client, also from the same address, is left alone. A CI job's connection is ended when the
# intermediate that signed its certificate is revoked (its `issuer=`).
# The log (Docker's json-file files, the live one first, then its rotations) is read backwards from its end, and
# the reading stops once every connection open now has been named: a big log is not read whole for a few.
# In: BKOPS_PORT, BKOPS_REVOKED (serials, lower-case hex without leading zeros, space-separated).
set -u
F=$(docker inspect -f '{{.LogPath}}' buildkit-gateway) || exit 1
# the peers of the connections open now (IPv6 as the log writes them: without brackets)
open=$(ss -tnH state established "( sport = :$BKOPS_PORT )" | awk '{ p = $4; gsub(/[][]/, "", p); print p }' | tr '\n' ' ')
n=0
for addr in $(for f in "$F" "$F".1 "$F".2 "$F".3 "$F".4 "$F".5 "$F".6 "$F".7 "$F".8 "$F".9; do
                [ -f "$f" ] && tac "$f"; done | awk -v open=" $open" -v revoked=" $BKOPS_REVOKED " '
    BEGIN { left = split(open, o, " "); for (i = 1; i <= left; i++) want[o[i]] = 1; if (left == 0) exit }
    index($0, "\"log\":\"connection ") {
      text = substr($0, index($0, "\"log\":\"") + 7)
      sub(/\\n".*/, "", text)
      m = split(text, w, " "); serial = ""; addr = ""; issuer = ""
      for (i = 2; i <= m; i++) {
        if (w[i] ~ /^serial=/) serial = tolower(substr(w[i], 8))
        if (w[i] ~ /^addr=/) addr = substr(w[i], 6)
        if (w[i] ~ /^issuer=/) issuer = tolower(substr(w[i], 8))
      }
      if (!(addr in want)) next
      delete want[addr]
      sub(/^0+/, "", serial)
      if (serial != "" && index(revoked, " " serial " ")) print addr
      else if (issuer != "" && index(revoked, " " issuer " ")) print addr
      if (--left == 0) exit
    }'); do
  ip=${addr%:*} port=${addr##*:}
  case "$ip" in *:*) ip="[$ip]" ;; esac
  case "$port" in ''|*[!0-9]*) continue ;; esac
  k=$(ss -K -tnH state established "( sport = :$BKOPS_PORT and dst $ip and dport = :$port )" | wc -l)
  n=$((n + k))
done
echo "@@cut"
echo "$n"
