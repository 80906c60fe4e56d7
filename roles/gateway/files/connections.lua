-- connections.lua: names each client connection in the gateway's log, once, at its first call, loaded by
-- haproxy.cfg. Written by buildkit-ops; do not edit on the host.
--
-- A revocation reaches the certificates that connect next (the CRL is checked in the TLS handshake), but not a
-- connection already open: HAProxy keeps serving it, also in the old worker after a reload. This line says which
-- certificate (serial) holds which connection (address and port), so that a run that revokes can end exactly
-- the revoked certificates' connections on the host (roles/gateway/cut.sh, with `ss -K`), and no other client's.
--
--   connection client=laptop2 serial=4F1C... addr=10.77.0.22:51234
--
-- A CI job's connection also names the intermediate that signed its certificate (issuer=, the serial its CN
-- ends with): revoking the intermediate (remove-ci-trust, rotate-certs --ci-issuer) ends its jobs' connections.

core.register_action("note_connection", {"http-req"}, function(txn)
  txn:set_var("sess.noted", true)
  local serial = txn.f:ssl_c_serial() or ""
  local issuer = txn:get_var("txn.ci_issuer")
  txn:log(core.info, string.format("connection client=%s serial=%s addr=%s:%s%s", txn:get_var("txn.client") or "-",
                                   txn.c:hex(serial), txn.f:src() or "-", txn.f:src_port() or "-",
                                   issuer and (" issuer=" .. issuer) or ""))
end)
