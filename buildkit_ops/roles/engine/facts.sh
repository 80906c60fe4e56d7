# engine: the OS, and the Docker Engine and Compose versions (empty when missing)
echo @@os; ( . /etc/os-release 2>/dev/null && echo "${ID:-unknown} ${VERSION_ID:-0} ${ID_LIKE:-}" ) || echo "unknown 0"
echo @@docker; docker version --format '{{.Server.Version}}' 2>/dev/null || true
echo @@compose; docker compose version --short 2>/dev/null || true
