# Log each client connection to the BuildKit port (BKOPS_PORT) as one line:
#   SOURCE START STOP      (seconds since the epoch, from the kernel's conntrack events)
# STOP is when the connection began to close (its conntrack state leaves ESTABLISHED at the first FIN or
# RST), not when the kernel forgets it (two minutes of TIME_WAIT later). A connection shorter than 20 ms
# cannot have carried a build (the shortest take longer) and is left out: a health check of a client's
# failover proxy every 2 seconds, a port probe. (stdbuf: conntrack writes each event at once, not when a
# pipe buffer fills.)
# mawk (Debian's and Ubuntu's awk) reads a pipe in blocks unless interactive: the last connections would wait
# in its buffer until more events come.
# Who connected when is for the operator only: the folder and the log are root's alone.
umask 077
mkdir -p /var/lib/buildkit-ops
chmod 700 /var/lib/buildkit-ops
touch /var/lib/buildkit-ops/connections.log
chmod 600 /var/lib/buildkit-ops/connections.log
if command -v mawk >/dev/null 2>&1; then AWK="mawk -W interactive"; else AWK=awk; fi
stdbuf -oL conntrack -E -e NEW,UPDATE,DESTROY -p tcp --orig-port-dst "$BKOPS_PORT" -o timestamp,id 2>/dev/null | $AWK -v min=0.02 '
{
  t = substr($1, 2, length($1) - 2); id = ""; src = ""; closing = 0
  for (i = 2; i <= NF; i++) {
    if ($i ~ /^id=/) id = substr($i, 4)
    if (src == "" && $i ~ /^src=/) src = substr($i, 5)
    if ($i ~ /^(FIN_WAIT|CLOSE_WAIT|LAST_ACK|TIME_WAIT|CLOSE)$/) closing = 1
  }
}
/\[NEW\]/ { start[id] = t; next }
(/\[UPDATE\]/ && closing) || /\[DESTROY\]/ {
  if (id in start) {
    if (t - start[id] >= min) { print src, start[id], t; fflush() }
    delete start[id]
  }
}' >> /var/lib/buildkit-ops/connections.log
