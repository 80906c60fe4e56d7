"""Sessions: how a script reaches its target. One interface (`run(script, upload)`, `close()`, a count of remote
commands) for every kind of target, as pyinfra's connectors and Ansible's `connection:` do:

  SshSession    one SSH connection (host key checked); a build host's scripts run as root (sudo -n for other
                users), a client's as the client's user;
  LocalSession  this machine, as the operator's user (a client with `connection: local`, and a CI runner's
                folder on the operator machine).

A script travels on stdin, so secrets never appear in a process list; with `upload`, the script is an argument
and that file (gzip-compressed) its stdin."""
from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fabric import Connection

from buildkit_ops.engine import trace, warm
from buildkit_ops.engine.compressed import gzipped, upload_size
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.ssh import RemoteError, connect, exec_command
from buildkit_ops.inventory import BuildHost, Client


def _host_key(host: BuildHost) -> tuple[str, str, int, str]:
    return warm.key(host.address, host.ssh_user, host.ssh_port, host.known_hosts)


def _client_key(client: Client) -> tuple[str, str, int, str]:
    return warm.key(client.ssh_address, client.ssh_user, client.ssh_port, client.known_hosts)


def _connect_host(host: BuildHost) -> Connection:
    with trace.span(host.name, "connect"):
        return connect(host.name, host.address, host.ssh_user, host.ssh_port, host.ssh_key, host.known_hosts,
                       host.connect_timeout)


def _connect_client(client: Client) -> Connection:
    with trace.span(client.name, "connect"):
        return connect(client.name, client.ssh_address, client.ssh_user, client.ssh_port, client.ssh_key,
                       client.known_hosts, client.connect_timeout)


def open_ahead(machines: Sequence[BuildHost | Client]) -> None:
    """Start opening the SSH connections of machines a flow reaches next (engine/warm.py); the next session to
    each takes its connection."""
    for m in machines:
        if isinstance(m, BuildHost):
            warm.open_ahead(_host_key(m), functools.partial(_connect_host, m))
        elif m.connection == "ssh":
            warm.open_ahead(_client_key(m), functools.partial(_connect_client, m))


class SshSession:
    def __init__(self, name: str, conn: Connection, timeout: float, sudo: bool = False, user: str = "root",
                 key: tuple[str, str, int, str] | None = None):
        self.name, self.conn, self.timeout, self.sudo, self.user = name, conn, timeout, sudo, user
        self.key = key
        self.commands = 0

    @classmethod
    def to_host(cls, host: BuildHost) -> SshSession:
        k = _host_key(host)
        conn = warm.take(k) or _connect_host(host)
        return cls(host.name, conn, host.connect_timeout, sudo=host.ssh_user != "root", user=host.ssh_user, key=k)

    @classmethod
    def to_client(cls, client: Client) -> SshSession:
        k = _client_key(client)
        conn = warm.take(k) or _connect_client(client)
        return cls(client.name, conn, client.connect_timeout, user=client.ssh_user, key=k)

    def run(self, script: str, upload: str | None = None, timeout: float = 600,
            progress: Callable[[int], None] | None = None,
            notes: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        self.commands += 1
        sudo = "sudo -n " if self.sudo else ""
        sent = upload_size(upload) if upload else len(script)
        with trace.span(self.name, "upload" if upload else "command", trace.first_line(script), sent):
            if upload:
                rc, out, err = exec_command(self.conn, f"{sudo}sh -c {quote(script)}",
                                            counted(gzipped(upload), progress), self.timeout, timeout, notes)
            else:
                rc, out, err = exec_command(self.conn, f"{sudo}sh -s", [script.encode()], self.timeout, timeout,
                                            notes)
        self.check_sudo(rc, err)
        return rc, out, err

    def check_sudo(self, rc: int, err: str) -> None:
        """A command refused by sudo for want of a password is one clear error, whichever command it was."""
        if self.sudo and rc != 0 and "password is required" in err:
            raise RemoteError(f"{self.name}: user {self.user} has no passwordless sudo; allow it (NOPASSWD) or set "
                              f"ssh_user: root in the inventory")

    def open_channel(self, script: str, timeout: float = 900) -> Any:
        """A channel running `script` whose stdin stays open (for a process that lives as long as the run, such as
        the host lock's): the caller reads its output and closes it."""
        sudo = "sudo -n " if self.sudo else ""
        chan = self.conn.client.get_transport().open_session(timeout=self.timeout)
        chan.settimeout(timeout)
        chan.exec_command(f"{sudo}sh -c {quote(script)}")
        return chan

    def close(self) -> None:
        self.conn.close()

    def hand_back(self) -> None:
        """Done with the machine for now, not with its connection: the next session to it takes it."""
        if self.key is None:
            self.conn.close()
        else:
            warm.give_back(self.key, self.conn)


class LocalSession:
    def __init__(self) -> None:
        self.commands = 0

    def run(self, script: str, upload: str | None = None, timeout: float = 600,
            progress: Callable[[int], None] | None = None,
            notes: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        """(`progress` is for uploads over a link: a local file is read in place; a local script's notes stay in
        its stderr)"""
        self.commands += 1
        with trace.span("local", "upload" if upload else "command", trace.first_line(script)):
            if upload:
                with open(upload, "rb") as f:
                    r = subprocess.run(["sh", "-c", script], stdin=f, capture_output=True, timeout=timeout)
                return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
            t = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=timeout)
            return t.returncode, t.stdout, t.stderr

    def close(self) -> None:
        pass

    def hand_back(self) -> None:
        pass


def to_client(client: Client) -> SshSession | LocalSession:
    """The session of a client machine: over SSH, or this machine (`local`, and a CI runner, whose folder is
    here)."""
    return SshSession.to_client(client) if client.connection == "ssh" else LocalSession()


def counted(chunks: list[bytes], progress: Callable[[int], None] | None) -> Iterator[bytes]:
    """The chunks, telling `progress` how many bytes of them were handed over so far (sent once the next is
    asked for)."""
    sent = 0
    for c in chunks:
        yield c
        sent += len(c)
        if progress:
            progress(sent)
