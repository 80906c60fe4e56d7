# gateway: put the new maps and CRL in force in place, through HAProxy's runtime API (the handler when nothing
# else of the gateway changed): no reload, no new worker, every connection and build goes on. Each map is
# replaced whole and atomically (prepare a new version, fill it, commit it: no request ever sees it half made);
# the CRL by a transaction (set, then commit). The files were written first: a restart finds the same state.
# In: BKOPS_DIR (the gateway's folder on the host), BKOPS_SOCK (the runtime API's socket on the host),
# BKOPS_CONF (that folder as the gateway sees it), BKOPS_MAPS (the map files to put in force), BKOPS_CRL (1: the
# CRL too).
set -u
api() { socat -t 10 stdio "unix-connect:$BKOPS_SOCK"; }
fail() { printf 'the runtime API refused %s: %s\n' "$1" "$(printf '%s' "$2" | tr '\n' ' ' | cut -c1-300)" >&2; exit 1; }
for m in $BKOPS_MAPS; do
  out=$(echo "prepare map $BKOPS_CONF/$m" | api) || fail "prepare map $m" "no answer"
  v=$(printf '%s\n' "$out" | sed -n 's/^New version created: \([0-9][0-9]*\)$/\1/p')
  [ -n "$v" ] || fail "prepare map $m" "$out"
  if [ -s "$BKOPS_DIR/$m" ]; then
    out=$({ printf 'add map @%s %s <<\n' "$v" "$BKOPS_CONF/$m"; cat "$BKOPS_DIR/$m"; printf '\n'; } | api)
    [ -z "$(printf '%s' "$out" | tr -d '[:space:]')" ] || fail "add map $m" "$out"
  fi
  out=$(echo "commit map @$v $BKOPS_CONF/$m" | api)
  [ -z "$(printf '%s' "$out" | tr -d '[:space:]')" ] || fail "commit map $m" "$out"
done
if [ "$BKOPS_CRL" = 1 ]; then
  out=$({ printf 'set ssl crl-file %s <<\n' "$BKOPS_CONF/crl.pem"; cat "$BKOPS_DIR/crl.pem"; printf '\n'; } | api)
  case "$out" in *[Tt]ransaction*) ;; *) fail "set ssl crl-file" "$out" ;; esac
  out=$(echo "commit ssl crl-file $BKOPS_CONF/crl.pem" | api)
  case "$out" in *Success*) ;; *) fail "commit ssl crl-file" "$out" ;; esac
fi
what=$BKOPS_MAPS
[ "$BKOPS_CRL" = 1 ] && what="$what crl.pem"
echo @@in_place
echo $what
