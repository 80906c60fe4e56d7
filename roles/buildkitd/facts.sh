# buildkitd: the pinned image on the host, the container, and who listens on the BuildKit port; then what
# buildkitd says of itself (verify.sh: a `docker exec`, the costliest fact), cached (facts_cache.sh) on the
# container's identity and start, and on the emulators the kernel knows (they add platforms), and kept only
# when buildkitd answered.
# In: BKOPS_IMAGE, BKOPS_PORT (set in front of this script, quoted).
echo @@image; docker image inspect --format '{{.Id}} {{range .RepoDigests}}{{.}} {{end}}' "$BKOPS_IMAGE" 2>/dev/null || true
_c=$(docker inspect --format '{{.State.Status}} {{.State.StartedAt}} {{.Image}} {{index .Config.Labels "org.buildkit-ops.config-hash"}} {{.Id}}' buildkitd 2>/dev/null)
echo @@container; echo "${_c% *}"
echo @@port; ss -ltnpH "sport = :$BKOPS_PORT" 2>/dev/null | head -3 || true
# data_dir's existing ancestors (and itself): root writes there, so nobody else may be able to
echo @@data_dir_parents; _d=$BKOPS_DATA_DIR
while [ -n "$_d" ]; do [ -e "$_d" ] && stat -c '%U %a %n' "$_d"; _d=${_d%/*}; done; stat -c '%U %a %n' /
# the build steps' fence (fence.sh check: one `missing: …` line per rule that is not in place)
echo @@fence; [ -f "$BKOPS_DATA_DIR/fence.sh" ] && sh "$BKOPS_DATA_DIR/fence.sh" check 2>&1 | head -20
case "$_c" in
  running\ *) bkops_cached "buildkitd $_c $(ls /proc/sys/fs/binfmt_misc 2>/dev/null | tr '\n' ' ')" bkops_verify ;;
esac
