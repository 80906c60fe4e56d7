"""provision: read a host's whole state in one SSH round trip, plan with the
roles (pure), show or apply the difference, recreate buildkitd only when
needed, and prove it answers over mutual TLS."""
from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import paramiko

from . import pki
from .inventory import BuildHost, Inventory
from .output import HostResult, Reporter
from .remote import RemoteError, connect, exec_command
from .roles import Step, parallel, sections
from .roles import buildkitd as role_buildkitd
from .roles import engine as role_engine
from .roles import firewall as role_firewall
from .roles import pki as role_pki
from .roles import prune as role_prune
from .shell import quote

OPERATOR_CN = "buildkit-ops-operator"


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
            rc, out, err = exec_command(self.conn, f"{sudo}sh -c {quote(script)}", _gzip_chunks(upload),
                                        self.host.connect_timeout, timeout)
        else:
            rc, out, err = exec_command(self.conn, f"{sudo}sh -s", [script.encode()], self.host.connect_timeout,
                                        timeout)
        if self.sudo and rc != 0 and "password is required" in err:
            raise RemoteError(f"{self.host.name}: user {self.host.ssh_user} has no passwordless sudo; "
                              f"allow it (NOPASSWD) or set ssh_user: root in the inventory")
        return rc, out, err

    def close(self):
        self.conn.close()


def _gzip_chunks(path: str):
    """The file, gzip-compressed on the fly (docker load reads gzip): a BuildKit image shrinks to a third."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield z.compress(chunk)
    yield z.flush()


def operator_cert(inv: Inventory, ca: pki.CA) -> pki.Leaf:
    """A client certificate kept on the operator machine, used only through an SSH tunnel to prove that the
    server answers mutual TLS (the firewall does not open the port to the operator)."""
    leaf = pki.Leaf(inv.pki_dir / "operator" / "client.crt", inv.pki_dir / "operator" / "client.key")
    pki.ensure_leaf(leaf, pki.signing_ca(inv.pki_dir, "client") or ca, OPERATOR_CN, inv.cert_days,
                    inv.cert_renew_days)
    return leaf


def mtls_probe(sess: HostSession, ca_pem: bytes, leaf: pki.Leaf | None, timeout: float = 10) -> str:
    """TLS handshake + HTTP/2 preface to buildkitd through an SSH tunnel; returns the negotiated protocol.
    Raises ssl.SSLError (e.g. 'certificate required', 'unknown ca') when the server refuses us."""
    chan = sess.conn.client.get_transport().open_channel(
        "direct-tcpip", ("127.0.0.1", sess.host.buildkit.port), ("127.0.0.1", 0), timeout=timeout)
    chan.settimeout(timeout)
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    if leaf:
        ctx.load_cert_chain(str(leaf.crt), str(leaf.key))
    ctx.set_alpn_protocols(["h2"])
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outg, server_hostname=sess.host.address)

    def pump(op):
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


def provision_host(inv: Inventory, host: BuildHost, check: bool, rep: Reporter, wait: int = 300,
                   force: bool = False, reissue: bool = False, drop_clients: bool | set[str] = False) -> HostResult:
    """wait: seconds to wait for running builds before a restart (then fail, or restart anyway with force);
    reissue: issue a new server certificate even if the current one is fine (rotation)."""
    res = HostResult(host.name)
    t0 = time.monotonic()
    sess = None
    try:
        # 1. reach the host first: an unreachable host gets nothing issued for it either
        try:
            sess = HostSession(host)
        except RemoteError as e:
            rep.fail(res, str(e), unreachable=True)
            return res
        # operator side: PKI (never written in check mode)
        pki_steps, ca = role_pki.ensure(inv, host, check, force=reissue)
        for s in pki_steps:
            rep.step(res, s.role, s.name, _status(s, check), s.detail)
        try:
            image_id = role_buildkitd.wanted_image_id(host)
        except FileNotFoundError as e:
            raise RemoteError(str(e)) from None
        if ca is not None:
            srv = pki.server_paths(inv.pki_dir, host.name)
            tls = {"ca.crt": role_pki.ca_bundle(inv.pki_dir), "server.crt": srv.crt.read_bytes(),
                   "server.key": srv.key.read_bytes()}
        else:  # check mode before the first run: placeholders that differ from anything on the host
            tls = {"ca.crt": b"(to be created)\n", "server.crt": b"(to be issued)\n", "server.key": b"(secret)\n"}
        files = role_buildkitd.render(host, tls, image_id)
        clients = {c.name: c.address for c in inv.clients.values()}

        # 2. one round trip: everything every role needs to know
        # the mTLS probe runs meanwhile on its own channel; it is repeated if buildkitd gets recreated
        probe = None
        if not check:  # (outside check mode the CA exists: pki.ensure made it)
            ca_pem, op = tls["ca.crt"], operator_cert(inv, ca)
            probe = _Probe(sess, ca_pem, op)
        rc, out, err = sess.run(parallel([role_engine.FACTS, role_firewall.FACTS, role_prune.FACTS,
                                          *role_buildkitd.facts(host, files)]))
        if rc != 0:
            raise RemoteError(f"reading the host's state failed ({rc}): {err.strip()[-500:]}")
        facts = sections(out)
        res.info["platforms"] = role_buildkitd.platforms(facts)

        # 3. plan (pure), all pre-flight errors before the first change
        steps = role_engine.plan(facts)
        steps += role_firewall.plan(facts, host.ssh_port, host.buildkit.port, clients, drop_clients)
        engine_missing = steps[0].changed
        if engine_missing:
            facts.update(container="", image="", port="", files="")
        bk_steps = role_buildkitd.plan(host, files, facts, image_id)
        prune_steps = role_prune.plan(host, facts)
        if check:  # fetch the current text of the files that would change, for the diffs
            changed_files = [f.path for f in files + role_prune.render(host) if not f.secret and any(
                s.changed and s.diff is not None and f.path.endswith(s.name) for s in bk_steps + prune_steps)]
            current = _fetch(sess, changed_files) if changed_files else {}
            bk_steps = role_buildkitd.plan(host, files, facts, image_id, current)
            prune_steps = role_prune.plan(host, facts, current)
        steps += bk_steps + prune_steps

        # 4. apply in order: engine, firewall (SSH first), files, image; then the handler.
        #    Consecutive scripts go to the host as one batch (one round trip), each step's outcome kept apart.
        notified = set()
        batch: list[Step] = []

        def flush():
            if not batch:
                return
            if batch[0].upload:
                rc, out, err = sess.run(batch[0].script, upload=batch[0].upload)
                failed_at, output = (0, (err or out)) if rc else (None, "")
            else:
                rc, out, err = sess.run(batch_script(batch))
                got = sections(out)
                failed_at = next((i for i in range(len(batch)) if f"failed{i}" in got), None)
                output = got.get(f"failed{failed_at}", "") if failed_at is not None else ""
                if rc != 0 and failed_at is None:
                    failed_at, output = len(batch) - 1, err or out
            for i, st in enumerate(batch):
                if failed_at is not None and i == failed_at:
                    rep.step(res, st.role, st.name, "failed", output.strip()[-400:])
                    raise RemoteError(f"{st.role}: {st.name} failed; the steps before it were applied, "
                                      f"re-run provision after fixing the cause")
                rep.step(res, st.role, st.name, "changed", st.detail)
            batch.clear()

        for s in steps:
            if not s.changed:
                flush()
                rep.step(res, s.role, s.name, "ok", s.detail)
                continue
            notified.update(s.notify)
            if check:
                rep.step(res, s.role, s.name, "would change", s.detail)
                if s.diff:
                    rep.text(s.diff.rstrip("\n"))
                if s.script and not s.diff and not s.upload and "BKOPS_EOF" not in s.script:
                    # (a script that carries a file's content is never shown: it may be a key)
                    rep.text("  $ " + s.script.strip().replace("\n", "\n  $ "))
                continue
            if s.upload:
                flush()
                batch.append(s)
                flush()
            elif s.script:
                batch.append(s)
            else:
                flush()
                rep.step(res, s.role, s.name, "changed", s.detail)
        flush()

        # 5. handler: recreate buildkitd only when notified
        if "recreate buildkitd" in notified:
            if check:
                rep.step(res, "buildkitd", "recreate buildkitd (handler)", "would change",
                         "docker compose up -d: the cache volume is kept")
            else:
                rc, out, err = sess.run(role_buildkitd.handler_script(host, files, image_id, wait, force))
                got = sections(out)
                busy = got.get("busy")
                if rc == 75 and busy:
                    rep.step(res, "buildkitd", "recreate buildkitd (handler)", "failed",
                             f"{busy} build(s) still running after {wait}s")
                    raise RemoteError(f"not restarted: {busy} build(s) still running after {wait}s. The new files "
                                      f"are in place; re-run when the builds are done, or with --force to restart "
                                      f"now (running builds fail)")
                if got.get("forced"):
                    rep.step(res, "buildkitd", "running builds", "changed",
                             f"{got['forced']} build(s) interrupted (--force)")
                if rc != 0:
                    rep.step(res, "buildkitd", "recreate buildkitd (handler)", "failed", (err or out)[-400:])
                    raise RemoteError("buildkitd did not start: see `docker logs buildkitd` on the host")
                facts.update(got)
                rep.step(res, "buildkitd", "recreate buildkitd (handler)", "changed", "cache volume kept")

        # 6. prove it answers: over the socket (version, workers) and over mutual TLS through an SSH tunnel
        if not check:
            if not facts.get("workers"):
                raise RemoteError("buildkitd does not answer on its socket: see `docker logs buildkitd`")
            if "recreate buildkitd" in notified:  # the first probe talked to the old container
                probe = _Probe(sess, ca_pem, op)
            proto = probe.result()
            res.info["buildkitd"] = role_buildkitd.summary(facts)
            res.info["platforms"] = role_buildkitd.platforms(facts)
            rep.step(res, "verify", "answers over mutual TLS", "ok", f"{proto}; {res.info['buildkitd']}")
    except (RemoteError, role_engine.UnsupportedHost, role_buildkitd.PortTaken, role_firewall.FirewallConflict,
            paramiko.SSHException, ssl.SSLError, TimeoutError, OSError) as e:
        rep.fail(res, str(e))
    finally:
        if sess is not None:
            res.info["remote_commands"] = sess.commands
            sess.close()
        res.info["seconds"] = round(time.monotonic() - t0, 2)
    return res


def batch_script(steps: list[Step]) -> str:
    """Run steps' scripts in order; stop at the first failure and print its output under @@failedN."""
    # Each step runs in its own `sh -e` (a subshell tested by `||` would silently ignore `set -e`).
    out = 'T=$(mktemp)\n'
    for i, st in enumerate(steps):
        out += (f"sh -e > \"$T\" 2>&1 <<'BKOPS_STEP_{i}'\n{st.script.strip()}\nBKOPS_STEP_{i}\n"
                f"[ $? -eq 0 ] || {{ echo @@failed{i}; cat \"$T\"; rm -f \"$T\"; exit 1; }}\n")
    return out + 'rm -f "$T"\n'


class _Probe:
    """mtls_probe in a thread, so it overlaps with reading the facts."""

    def __init__(self, sess: HostSession, ca_pem: bytes, leaf: pki.Leaf):
        self._out: list = []
        self._t = threading.Thread(target=self._run, args=(sess, ca_pem, leaf), daemon=True)
        self._t.start()

    def _run(self, sess, ca_pem, leaf):
        try:
            self._out.append(mtls_probe(sess, ca_pem, leaf))
        except Exception as e:  # reported by result()
            self._out.append(e)

    def result(self) -> str:
        self._t.join()
        if isinstance(self._out[0], Exception):
            raise self._out[0]
        return self._out[0]


def _status(s: Step, check: bool) -> str:
    return ("would change" if check else "changed") if s.changed else "ok"


def _fetch(sess: HostSession, paths: list[str]) -> dict[str, str]:
    # sections are numbered: a path is never printed back as a marker (nor run, whatever it holds)
    script = "".join(f"echo @@f{i}; base64 -w0 {quote(p)} 2>/dev/null; echo\n" for i, p in enumerate(paths))
    rc, out, _ = sess.run(script)
    got = sections(out)
    return {p: base64.b64decode(got[f"f{i}"]).decode(errors="replace") for i, p in enumerate(paths)
            if got.get(f"f{i}")}


def provision(inv: Inventory, hosts: list[BuildHost], check: bool, rep: Reporter, wait: int = 300,
              force: bool = False, reissue: bool = False, drop_clients: bool | set[str] = False) -> list[HostResult]:
    pki.load_ca(inv.pki_dir)  # a corrupt or unreadable CA stops the run before any host is contacted
    def one(h):
        return provision_host(inv, h, check, rep, wait, force, reissue, drop_clients)
    if len(hosts) == 1:
        return [one(hosts[0])]
    # the CA must exist before hosts are handled in parallel (each would otherwise create one)
    if not check:
        pki.ensure_ca(inv.pki_dir, inv.ca_days)
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        return list(pool.map(one, hosts))
