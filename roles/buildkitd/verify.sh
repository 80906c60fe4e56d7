# What buildkitd says of itself over its local socket, in one `docker exec`: version, workers and
# platforms, the network its build steps run on (cni: sandboxed; host: the host's own), and the GC rules it
# applies (what status' config doctor judges).
docker exec "$BKOPS_CONTAINER" sh -c 'S=unix:///run/buildkit/buildkitd.sock
echo @@version; buildkitd --version
echo @@workers; buildctl --addr $S debug workers
V=$(buildctl --addr $S debug workers -v)
echo @@step_network; echo "$V" | grep -o "worker.network:[[:space:]]*[a-z]*" | head -1 | sed "s/.*:[[:space:]]*//"
echo @@gc_rules; echo "$V" | sed -n "/^GC Policy rule/,\$p"' 2>/dev/null || true
