# failover_proxy: the proxy's image on the client, and its container: running? with which configuration (the
# hash provision set as a label when it created it), and which certificate files?
echo @@proxy_image; docker image inspect --format '{{.Id}}' "$BKOPS_PROXY_IMAGE" 2>/dev/null || true
L='{{.State.Running}} {{index .Config.Labels "org.buildkit-ops.proxy-config"}}'
echo @@proxy; docker inspect --format "$L" "$BKOPS_PROXY_CONTAINER" 2>/dev/null || true
# the sum of the certificate files provision put in it (placement spill or least-busy: its room checks)
# (its own line whatever the file ends with: the next section starts on a line of its own)
echo @@proxy_tls; docker cp "$BKOPS_PROXY_CONTAINER:/usr/local/etc/haproxy/tls.sum" - 2>/dev/null | tar -xO 2>/dev/null; echo
