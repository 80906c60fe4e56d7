# buildx_builder: the client's docker config folder, buildx, the trap of buildkitd.default.toml, and what the
# builder's folder holds (the state hash provision wrote, the certificates' sums), and whether the builder exists.
D=${DOCKER_CONFIG:-$HOME/.docker}
echo @@docker_config; echo "$D"
echo @@buildx; docker buildx version 2>/dev/null || true
BX=${BUILDX_CONFIG:-$D/buildx}
echo @@trap; [ -f "$BX/buildkitd.default.toml" ] && echo "$BX/buildkitd.default.toml" || true
F="$D/buildkit-ops/$BKOPS_DIR"
echo @@state; cat "$F/state" 2>/dev/null || true
echo @@certsums; for f in ca.pem cert.pem key.pem; do sha256sum < "$F/$f" 2>/dev/null | cut -c1-64; done
# (buildx's own record of the builder, not `docker buildx inspect`: that asks every node for its status, and a
# node that does not answer, as after remove-client closed the firewall, costs a connection timeout each)
echo @@builder; [ -f "$BX/instances/$BKOPS_BUILDER" ] && echo present || echo absent
