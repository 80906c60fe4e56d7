# tenants: every tenant daemon on the host (containers named buildkitd-*): state, start and the config hash it
# was created with, and the fence of each tenant's build steps (fence.sh check). A host
# that never had a tenant has no data_dir/tenants folder: nothing more is asked of Docker then.
# In: BKOPS_DATA_DIR (set in front of this script, quoted).
echo @@tenant_daemons
if [ -d "$BKOPS_DATA_DIR/tenants" ]; then
  for c in $(docker ps -a --format '{{.Names}}' --filter 'name=^buildkitd-' 2>/dev/null); do
    docker inspect --format '{{.Name}} {{.State.Status}} {{.State.StartedAt}} {{index .Config.Labels "org.buildkit-ops.config-hash"}}' "$c" 2>/dev/null | sed 's,^/,,'
  done
  echo @@tenant_fences
  for f in "$BKOPS_DATA_DIR"/tenants/*/fence.sh; do
    [ -f "$f" ] || continue
    t=${f%/fence.sh}; t=${t##*/}
    sh "$f" check 2>&1 | head -20 | sed "s/^/$t /"
  done
fi
