# tenants: every tenant daemon on the host (containers named buildkitd-*): state, start and the config hash it
# was created with; their cache volumes; and the fence of each tenant's build steps (fence.sh check).
# In: BKOPS_DATA_DIR (set in front of this script, quoted).
echo @@tenant_daemons
for c in $(docker ps -a --format '{{.Names}}' --filter 'name=^buildkitd-' 2>/dev/null); do
  docker inspect --format '{{.Name}} {{.State.Status}} {{.State.StartedAt}} {{index .Config.Labels "org.buildkit-ops.config-hash"}}' "$c" 2>/dev/null | sed 's,^/,,'
done
echo @@tenant_volumes; docker volume ls -q --filter 'name=^buildkit-cache-' 2>/dev/null || true
echo @@tenant_fences
for f in "$BKOPS_DATA_DIR"/tenants/*/fence.sh; do
  [ -f "$f" ] || continue
  t=${f%/fence.sh}; t=${t##*/}
  sh "$f" check 2>&1 | head -20 | sed "s/^/$t /"
done
