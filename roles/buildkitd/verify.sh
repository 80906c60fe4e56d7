# What buildkitd says of itself over its local socket, in one `docker exec`: version, workers and
# platforms, and the network its build steps run on (cni: sandboxed; host: the host's own).
docker exec buildkitd sh -c 'S=unix:///run/buildkit/buildkitd.sock
echo @@version; buildkitd --version
echo @@workers; buildctl --addr $S debug workers
echo @@step_network; buildctl --addr $S debug workers -v | grep -o "worker.network:[[:space:]]*[a-z]*" | head -1 \
  | sed "s/.*:[[:space:]]*//"' 2>/dev/null || true
