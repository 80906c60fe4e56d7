"""Proof that buildkitd answers mutual TLS: a TLS handshake with an operator certificate and an HTTP/2
exchange, through an SSH tunnel (the firewall never opens the port to the operator machine)."""
from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from buildkit_ops.inventory import BuildHost
from buildkit_ops.pki.certs import Leaf

T = TypeVar("T")


def mtls_probe(sess: Any, host: BuildHost, ca_pem: bytes, leaf: Leaf | None, timeout: float = 10) -> str:
    """TLS handshake + HTTP/2 preface to buildkitd through the session's SSH connection (a tunnel); returns the
    negotiated protocol. Raises ssl.SSLError (e.g. 'certificate required', 'unknown ca') when the server refuses
    us."""
    chan = sess.conn.client.get_transport().open_channel(
        "direct-tcpip", (host.private_address or "127.0.0.1", host.buildkit.port), ("127.0.0.1", 0), timeout=timeout)
    chan.settimeout(timeout)
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    if leaf:
        ctx.load_cert_chain(str(leaf.crt), str(leaf.key))
    ctx.set_alpn_protocols(["h2"])
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outg, server_hostname=host.address)

    def pump(op: Callable[[], T]) -> T:
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = op()
                if outg.pending:
                    chan.sendall(outg.read())
                return result
            except ssl.SSLWantReadError:
                if outg.pending:
                    chan.sendall(outg.read())
                if time.monotonic() > deadline:
                    raise TimeoutError("no TLS answer") from None
                try:
                    data = chan.recv(65536)
                except socket.timeout:
                    raise TimeoutError("no TLS answer") from None
                if not data:
                    inc.write_eof()
                else:
                    inc.write(data)
    try:
        pump(tls.do_handshake)
        # HTTP/2 preface + empty SETTINGS: a gRPC server that accepted our certificate answers with SETTINGS
        pump(lambda: tls.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
        data = pump(lambda: tls.read(9))
        if len(data) < 9 or data[3] != 0x04:
            raise ssl.SSLError("the server did not answer with HTTP/2 SETTINGS")
        return f"{tls.version()}, HTTP/2"
    finally:
        chan.close()


class Probe:
    """mtls_probe in a thread, so it overlaps with reading the facts."""

    def __init__(self, sess: Any, host: BuildHost, ca_pem: bytes, leaf: Leaf):
        self._out: list[Any] = []
        self._t = threading.Thread(target=self._run, args=(sess, host, ca_pem, leaf), daemon=True)
        self._t.start()

    def _run(self, sess: Any, host: BuildHost, ca_pem: bytes, leaf: Leaf) -> None:
        try:
            self._out.append(mtls_probe(sess, host, ca_pem, leaf))
        except Exception as e:  # reported by result()
            self._out.append(e)

    def result(self) -> str:
        self._t.join()
        out = self._out[0]
        if isinstance(out, Exception):
            raise out
        return str(out)
