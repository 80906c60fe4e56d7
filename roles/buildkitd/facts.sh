# buildkitd, for one daemon (BKOPS_CONTAINER): its image on the host, its container; then what it says of itself
# (verify.sh: a `docker exec`, the costliest fact), cached (facts_cache.sh) on the container's identity and start,
# and on the emulators the kernel knows (they add platforms), and kept only when it answered. The default
# instance (BKOPS_CENSUS) also lists the tenants' daemons found on the host, wanted or not (their containers and
# cache volumes).
# In: BKOPS_IMAGE, BKOPS_CONTAINER, BKOPS_DATA_DIR, BKOPS_FILES_DIR, BKOPS_CENSUS (set in front, quoted).
echo @@image; docker image inspect --format '{{.Id}} {{range .RepoDigests}}{{.}} {{end}}' "$BKOPS_IMAGE" 2>/dev/null || true
_c=$(docker inspect --format '{{.State.Status}} {{.State.StartedAt}} {{.Image}} {{index .Config.Labels "org.buildkit-ops.config-hash"}} {{.Id}}' "$BKOPS_CONTAINER" 2>/dev/null)
echo @@container; echo "${_c% *}"
# data_dir's existing ancestors (and itself): root writes there, so nobody else may be able to
echo @@data_dir_parents; _d=$BKOPS_DATA_DIR
while [ -n "$_d" ]; do [ -e "$_d" ] && stat -c '%U %a %n' "$_d"; _d=${_d%/*}; done; stat -c '%U %a %n' /
# the build steps' fence (fence.sh check: one `missing: …` line per rule that is not in place)
echo @@fence; [ -f "$BKOPS_FILES_DIR/fence.sh" ] && sh "$BKOPS_FILES_DIR/fence.sh" check 2>&1 | head -20
# (a host that never had a tenant has no data_dir/tenants folder: nothing more is asked of Docker then)
if [ -n "$BKOPS_CENSUS" ] && [ -d "$BKOPS_DATA_DIR/tenants" ]; then
  echo @@tenant_daemons
  docker ps -a --format '{{.Names}}' --filter 'name=^buildkitd-' 2>/dev/null | sed -n 's/^buildkitd-//p'
  docker volume ls -q --filter 'name=^buildkit-cache-' 2>/dev/null | sed -n 's/^buildkit-cache-//p'
fi
case "$_c" in
  running\ *) bkops_cached "$BKOPS_CONTAINER $_c $(ls /proc/sys/fs/binfmt_misc 2>/dev/null | tr '\n' ' ')" bkops_verify ;;
esac
