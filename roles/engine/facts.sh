# engine: the OS, and the Docker Engine and Compose versions (empty when missing). The versions are cached
# (facts_cache.sh) on the binaries and the running dockerd: `docker compose version` alone costs more than
# the rest of the facts.
echo @@os; ( . /etc/os-release 2>/dev/null && echo "${ID:-unknown} ${VERSION_ID:-0} ${ID_LIKE:-}" ) || echo "unknown 0"
_p=$(cat /run/docker.pid 2>/dev/null)
[ -n "$_p" ] && kill -0 "$_p" 2>/dev/null || _p=none
_bins=$(stat -c '%n %i %Y' /usr/bin/docker /usr/bin/dockerd /usr/libexec/docker/cli-plugins/docker-compose \
  /usr/lib/docker/cli-plugins/docker-compose /usr/local/lib/docker/cli-plugins/docker-compose 2>/dev/null)
bkops_cached "engine $_p $_bins" sh -c '
echo @@docker; docker version --format "{{.Server.Version}}" 2>/dev/null || true
echo @@compose; docker compose version --short 2>/dev/null || true'
