"""The host lock: a run that changes a build host (provision, and what runs it: add-client, remove-client,
rotate-certs; cache-prune) holds a lock on that host for its whole duration, so that two operators never change
one host at once (as Kamal's `kamal lock` does). A second run waits a bounded time, then stops with who holds the
lock and since when, before it changed anything. `--check`, `status` and the other readers take none.

The lock is `flock` on a file under /run/lock, held by a remote process on a channel of the run's own SSH
connection: it ends with the run however the run ends (done, failed, killed: sshd ends the process when the
connection goes), and at the latest after LEASE seconds, so a lock left by a run that vanished expires.

A run rides the lock on its facts' round trip (`Ride`): the lock's channel is opened beside the facts' command,
whose script first waits (briefly) until the lock file's owner names this run's token, so that what it reads is
read under the lock; if the lock was busy, the facts are read again once the run holds it."""
from __future__ import annotations

import getpass
import secrets
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.ssh import RemoteError

LOCK = "/run/lock/buildkit-ops.lock"
WAIT_SECONDS = 120           # Options.lock_wait's default too
LEASE_SECONDS = 4 * 3600     # longer than any run (a restart waits for builds at most --wait: 5 or 10 min)


class HostLocked(RemoteError):
    """Another run holds the host (or the lock could not be taken): nothing was changed."""


def owner(task: str) -> str:
    """Who takes the lock: operator, machine, task and start (shown to whoever waits for it)."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"{getpass.getuser()}@{socket.gethostname()} ({task}, since {started})"


def script(who: str, wait: int, lease: int, path: str = LOCK, token: str = "") -> str:
    """Take the lock (waiting at most `wait` seconds), say so, and hold it until stdin closes or the lease ends.
    The owner file says who holds it (its first line, shown to whoever waits) and the run's token."""
    lock, owner_file = quote(path), quote(path + ".owner")
    return f"""exec 9>>{lock}
chmod 600 {lock}
if ! flock -n 9; then
  echo "@@busy $(head -1 {owner_file} 2>/dev/null)"
  flock -w {int(wait)} 9 || {{ echo "@@held $(head -1 {owner_file} 2>/dev/null)"; exit 3; }}
fi
printf '%s\\n%s\\n' {quote(who)} {quote(token)} > {owner_file}
echo @@locked
exec timeout {int(lease)} cat >/dev/null
"""


RIDE_WAIT_STEPS = 150   # x 20 ms: how long the facts wait for the lock before they are read anyway (and again later)


def under_lock(token: str, path: str = LOCK, steps: int = RIDE_WAIT_STEPS) -> str:
    """Shell run before a run's facts: wait until the lock is this run's, then section `host_lock` says `ours`
    (or `not yet`: the lock was busy, and the facts must be read again once it is held)."""
    owner_file = quote(path + ".owner")
    return f"""i=0
until [ "$(sed -n 2p {owner_file} 2>/dev/null)" = {quote(token)} ]; do
  i=$((i + 1))
  if [ $i -ge {int(steps)} ]; then printf '@@host_lock\\nnot yet\\n'; break; fi
  sleep 0.02
done
[ $i -ge {int(steps)} ] || printf '@@host_lock\\nours\\n'
"""


@dataclass
class Held:
    waited: float          # seconds spent waiting for another run's lock
    waited_for: str        # whose lock that was ("" when it was free)
    channel: Any

    def release(self) -> None:
        chan = self.channel
        try:
            chan.shutdown_write()
            chan.close()
        except OSError:
            pass


def acquire(sess: SshSession, task: str, wait: int = WAIT_SECONDS, lease: int = LEASE_SECONDS,
            token: str = "") -> Held:
    """The host's lock, or HostLocked naming who holds it. Lines of the lock script arrive on the channel."""
    t0 = time.monotonic()
    chan = sess.open_channel(script(owner(task), wait, lease, token=token), timeout=wait + 60)
    buf = b""
    while b"@@locked\n" not in buf:
        data = chan.recv(4096)
        if not data:
            rc = chan.recv_exit_status()
            err = chan.recv_stderr(65536).decode(errors="replace") if chan.recv_stderr_ready() else ""
            chan.close()
            sess.check_sudo(rc, err)
            held = next((line[7:] for line in buf.decode(errors="replace").splitlines()
                         if line.startswith("@@held ")), "")
            if held:
                raise HostLocked(f"{sess.name}: another run holds the host's lock: {held.strip()}; waited {wait} s. "
                                 f"Nothing was changed: run again once it is done")
            said = (buf.decode(errors="replace") + err).strip()[-200:]
            raise HostLocked(f"{sess.name}: the host's lock could not be taken ({said or f'exit status {rc}'}); "
                             f"check that `flock` (util-linux) is installed")
        buf += data
    busy = next((line[7:] for line in buf.decode(errors="replace").splitlines() if line.startswith("@@busy ")), "")
    return Held(time.monotonic() - t0, busy.strip(), chan)


class Ride:
    """The lock taken beside the run's facts (one round trip for both): `prefix` goes in front of the facts'
    script; `held()` waits for the lock (or raises HostLocked) and says whether the facts were read under it."""

    def __init__(self, sess: SshSession, task: str, wait: int = WAIT_SECONDS) -> None:
        self.token = secrets.token_hex(8)
        self.prefix = under_lock(self.token)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="host-lock")
        self._lock: Future[Held] = self._pool.submit(acquire, sess, task, wait, LEASE_SECONDS, self.token)
        self._pool.shutdown(wait=False)

    def held(self, facts_said: str | None) -> tuple[Held, bool]:
        """(the lock, whether the facts that said `facts_said` in their `host_lock` section were read under it)"""
        return self._lock.result(), facts_said == "ours"

    def release(self) -> None:
        """Let the lock go however the run ended (a lock still being taken goes with the run's connection)."""
        if self._lock.done() and self._lock.exception() is None:
            self._lock.result().release()
