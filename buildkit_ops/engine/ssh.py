"""SSH to build hosts and clients with Fabric, host keys checked, never accepted blindly."""
from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from buildkit_ops.errors import BkopsError

# paramiko logs refused tunnel channels (the early TLS probe of a first provision) as errors; with no
# handler, Python would print them on stderr as stray noise. Our own messages say what went wrong.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class RemoteError(BkopsError):
    """A host could not be used: the message says why and what to do."""


def connect(name: str, address: str, user: str, port: int, key: str | None, known_hosts: str,
            timeout: int = 10) -> Connection:
    """An open Fabric connection whose host key was checked against `known_hosts`."""
    kh = Path(os.path.expanduser(known_hosts))
    cfg = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True, "in_stream": False}})
    connect_kwargs: dict[str, Any] = {"banner_timeout": timeout, "auth_timeout": timeout}
    target = f"{name} ({user}@{address}:{port})"
    if key:
        try:  # a key that cannot be loaded is the operator's file, not the host: say so, before connecting
            paramiko.PKey.from_path(key)
        except paramiko.PasswordRequiredException:
            pass  # encrypted: paramiko asks ssh-agent, which may hold it
        except (paramiko.SSHException, OSError, ValueError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else "not a private key that can be read"
            raise RemoteError(f"{target}: ssh_key {key} cannot be used ({why}); give a private key file (not the "
                              f".pub), e.g. one made by ssh-keygen") from None
    if key:
        connect_kwargs["key_filename"] = [key]
        connect_kwargs["look_for_keys"] = False
    conn = Connection(address, user=user, port=port, config=cfg, connect_kwargs=connect_kwargs,
                      connect_timeout=timeout)
    # Fabric's default is AutoAddPolicy: replace it. Only the keys in known_hosts count.
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if kh.exists():
        try:
            client.load_host_keys(str(kh))
        except paramiko.hostkeys.InvalidHostKey as e:
            # e.g. an @cert-authority or @revoked marker: paramiko cannot read them, and skipping a @revoked line
            # would accept the very key it revokes. Refuse, and say how to go on.
            line = str(e.args[0] if e.args else "")[:60]
            raise RemoteError(f"{target}: {kh} has a line SSH here cannot read ({line!r}...): markers such as "
                              f"@cert-authority and @revoked are not supported; put this machine's own key line "
                              f"in a known_hosts file of its own (`ssh-keyscan -p {port} {address}`, its fingerprint "
                              f"checked out of band) and point known_hosts at that file") from None
    conn.client = client
    try:
        # Every message goes out at once: with Nagle's algorithm, each small SSH message (a channel's open, its
        # command, its end of input) waits for the ACK of the one before, which costs a no-op run several round
        # trips (OpenSSH sets TCP_NODELAY too)
        sock = socket.create_connection((address, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.connect_kwargs["sock"] = sock
        conn.open()
    except paramiko.BadHostKeyException as e:
        raise RemoteError(
            f"{target}: the host key changed (known_hosts: {kh}); it may be a different machine or an attack. "
            f"If the host was rebuilt, check its new key out of band, then run `ssh-keygen -R {address} -f {kh}` "
            f"and add the new key") from e
    except paramiko.SSHException as e:
        if "not found in known_hosts" in str(e):
            raise RemoteError(
                f"{target}: its host key is not in {kh}; keys are never accepted blindly. Add it after checking "
                f"its fingerprint out of band (e.g. the provider's console): `ssh-keyscan -p {port} {address} "
                f">> {kh}`") from e
        if isinstance(e, paramiko.AuthenticationException):
            raise RemoteError(f"{target}: login refused ({e}); check ssh_user and ssh_key in the inventory") from e
        raise RemoteError(f"{target}: SSH failed: {e}") from e
    except (socket.timeout, TimeoutError) as e:
        raise RemoteError(f"{target}: unreachable (no answer in {timeout}s); check address and ssh_port") from e
    except OSError as e:
        raise RemoteError(f"{target}: unreachable ({e.strerror or e}); check address and ssh_port") from e
    return conn


NOTE = b"@@note "   # a line a remote script writes on stderr to tell the operator how it is doing, as it goes


def exec_command(conn: Connection, command: str, stdin: Iterable[bytes], open_timeout: float = 10,
                 timeout: float = 600, notes: Callable[[str], None] | None = None) -> tuple[int, str, str]:
    """Run one command on its own channel, feed it `stdin`, collect stdout, stderr and the exit status; each
    `@@note ` line of its stderr goes to `notes` as soon as it arrives (and stays out of the stderr returned)."""
    chan = conn.client.get_transport().open_session(timeout=open_timeout)
    chan.settimeout(timeout)
    chan.exec_command(command)
    for chunk in stdin:
        chan.sendall(chunk)
    chan.shutdown_write()
    out, err = bytearray(), bytearray()
    while True:
        if chan.recv_ready():
            out += chan.recv(65536)
        elif chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
            err = _pass_notes(err, notes)
        elif chan.exit_status_ready():
            if not (chan.recv_ready() or chan.recv_stderr_ready()):
                break
        else:
            time.sleep(0.005)
    rc = chan.recv_exit_status()
    chan.close()
    return rc, out.decode(errors="replace"), err.decode(errors="replace")


def _pass_notes(err: bytearray, notes: Callable[[str], None] | None) -> bytearray:
    """Hand the complete note lines of `err` to `notes`; keep everything else (and a partial last line)."""
    if NOTE not in err:
        return err
    kept = bytearray()
    lines = err.split(b"\n")
    for line in lines[:-1]:
        if line.startswith(NOTE):
            if notes:
                notes(line[len(NOTE):].decode(errors="replace"))
        else:
            kept += line + b"\n"
    return kept + lines[-1]
