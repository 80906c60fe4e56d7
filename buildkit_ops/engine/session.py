"""A session on a build host: one SSH connection, every script run as root."""
from __future__ import annotations

import zlib
from collections.abc import Iterator

from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.ssh import RemoteError, connect, exec_command
from buildkit_ops.inventory import BuildHost


class HostSession:
    """One SSH connection to a host; every script runs as root (sudo -n for other users) with its text on
    stdin, so secrets never appear in a process list. Counts the remote commands it runs."""

    def __init__(self, host: BuildHost):
        self.host = host
        self.conn = connect(host.name, host.address, host.ssh_user, host.ssh_port, host.ssh_key, host.known_hosts,
                            host.connect_timeout)
        self.sudo = host.ssh_user != "root"
        self.commands = 0

    def run(self, script: str, upload: str | None = None, timeout: float = 600) -> tuple[int, str, str]:
        self.commands += 1
        sudo = "sudo -n " if self.sudo else ""
        if upload:
            # the file goes on stdin; the script is passed as an argument (it holds no secrets then)
            rc, out, err = exec_command(self.conn, f"{sudo}sh -c {quote(script)}", gzip_chunks(upload),
                                        self.host.connect_timeout, timeout)
        else:
            rc, out, err = exec_command(self.conn, f"{sudo}sh -s", [script.encode()], self.host.connect_timeout,
                                        timeout)
        if self.sudo and rc != 0 and "password is required" in err:
            raise RemoteError(f"{self.host.name}: user {self.host.ssh_user} has no passwordless sudo; "
                              f"allow it (NOPASSWD) or set ssh_user: root in the inventory")
        return rc, out, err

    def close(self) -> None:
        self.conn.close()


def gzip_chunks(path: str) -> Iterator[bytes]:
    """The file, gzip-compressed on the fly (docker load reads gzip): a BuildKit image shrinks to a third."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield z.compress(chunk)
    yield z.flush()
