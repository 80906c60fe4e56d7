# buildkitd: the pinned image on the host, the container, and who listens on the BuildKit port.
# In: BKOPS_IMAGE, BKOPS_PORT (set in front of this script, quoted).
echo @@image; docker image inspect --format '{{.Id}}' "$BKOPS_IMAGE" 2>/dev/null || true
echo @@container; docker inspect --format '{{.State.Status}} {{.State.StartedAt}} {{.Image}} {{index .Config.Labels "org.buildkit-ops.config-hash"}}' buildkitd 2>/dev/null || true
echo @@port; ss -ltnpH "sport = :$BKOPS_PORT" 2>/dev/null | head -3 || true
