# Compose v2 for Debian 12 is packaged in trixie (it depends only on libc): add trixie from the mirror this host
# already uses, pinned low, so that only what is asked for by name (docker-compose/trixie) comes from it.
if [ ! -f /etc/apt/sources.list.d/trixie-compose.sources ]; then
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb"{b=0; for(i=2;i<=NF;i++){if($i~/^\[/)b=1; if(!b){print $i; exit} if($i~/\]$/)b=0}}' \
    /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || { echo "no Debian mirror in /etc/apt/sources.list(.d) to add trixie from" >&2; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\n' "$m" > /etc/apt/sources.list.d/trixie-compose.sources
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > /etc/apt/preferences.d/trixie-compose
fi
