# gateway: the pinned image on the host, the container, and who listens on the BuildKit port.
# In: BKOPS_GATEWAY_IMAGE, BKOPS_PORT, BKOPS_DATA_DIR, BKOPS_ADMIN_SOCKET (set in front of this script, quoted).
echo @@gw_image; docker image inspect --format '{{.Id}} {{range .RepoDigests}}{{.}} {{end}}' "$BKOPS_GATEWAY_IMAGE" 2>/dev/null || true
echo @@gw_container; docker inspect --format '{{.State.Status}} {{.State.StartedAt}} {{index .Config.Labels "org.buildkit-ops.config-hash"}}' buildkit-gateway 2>/dev/null || true
# the key buildkitd held before the gateway did (hosts provisioned by an earlier version)
echo @@gw_old_key; [ -e "$BKOPS_DATA_DIR/tls/server.key" ] && echo present
echo @@gw_port; ss -ltnpH "sport = :$BKOPS_PORT" 2>/dev/null | head -3 || true
# the CRL the gateway enforces: a PKI state older than it must not replace it (roles/gateway plan)
echo @@gw_crl; cat "$BKOPS_DATA_DIR/gateway/crl.pem" 2>/dev/null || true
echo @@gw_generation; cat "$BKOPS_DATA_DIR/gateway/pki-generation" 2>/dev/null || true
# the server certificate it presents (status: expiry and names)
echo @@gw_server_cert; base64 -w0 "$BKOPS_DATA_DIR/tls/server.crt" 2>/dev/null; echo
# the runtime API (update.sh reaches it with socat): there once a gateway of this version runs
echo @@gw_admin; [ -S "$BKOPS_ADMIN_SOCKET" ] && echo present
echo @@gw_socat; command -v socat >/dev/null 2>&1 && echo present
# the refusal replies in its folder (one no longer rendered, of an earlier version or a tenant gone, is removed)
echo @@gw_replies; ls "$BKOPS_DATA_DIR/gateway" 2>/dev/null | grep '\.http$' || true
# the host's own addresses (private mode listens on one of them)
echo @@gw_addresses; ip -o addr show 2>/dev/null | awk '{print $4}' | cut -d/ -f1
