"""Keeping servers healthy: cache-prune, status and doctor."""
from __future__ import annotations

import base64
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509

from . import clients as client_mod
from . import pki
from .inventory import BuildHost, Client, Inventory, is_ip
from .output import HostResult, Reporter
from .remote import RemoteError
from .render import safe_dirname
from .roles import Context, load, sections
from .roles import buildkitd as role_buildkitd
from .roles import firewall as role_firewall
from .runner import gather
from .session import HostSession
from .shell import quote

SOCK = role_buildkitd.SOCK
CTL = f"docker exec {role_buildkitd.CONTAINER} buildctl --addr {SOCK}"
WARN_DAYS = 30
ROLES = load()


def human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


def _usage(text: str) -> dict:
    """Totals from `buildctl du --format '{{json .}}'`."""
    try:
        records = json.loads(text or "[]") or []
    except json.JSONDecodeError:
        return {"records": 0, "total": 0, "reclaimable": 0}
    return {"records": len(records), "total": sum(r.get("size", r.get("Size", 0)) for r in records),
            "reclaimable": sum(r.get("size", r.get("Size", 0)) for r in records
                               if not r.get("inUse", r.get("InUse", False)))}


def _each(hosts: list[BuildHost], fn) -> list[HostResult]:
    def one(h):
        res = HostResult(h.name)
        try:
            sess = HostSession(h)
        except RemoteError as e:
            res.error, res.unreachable = str(e), True
            return res
        try:
            fn(h, sess, res)
        except RemoteError as e:
            res.error = str(e)
        finally:
            res.info["remote_commands"] = sess.commands
            sess.close()
        return res
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(hosts)))) as pool:
        return list(pool.map(one, hosts))


# ------------------------------------------------------------------ cache-prune

def prune_command(keep_storage: int | None, keep_duration: int | None, filters: list[str], all_: bool) -> str:
    args = ["prune", "--format", "'{{json .}}'"]
    if keep_storage is not None:
        args += ["--keep-storage", f"{keep_storage / 1e6:.6f}"]   # buildctl counts MB of 10^6 bytes
    if keep_duration is not None:
        args += ["--keep-duration", f"{keep_duration}s"]
    for f in filters:
        args += ["--filter", quote(f)]
    if all_:
        args.append("--all")
    return f"{CTL} {' '.join(args)}"


def cache_prune(inv: Inventory, hosts: list[BuildHost], keep_storage: int | None, keep_duration: int | None,
                filters: list[str], all_: bool, check: bool, rep: Reporter) -> list[HostResult]:
    du = f"{CTL} du --format '{{{{json .}}}}'"

    def work(h: BuildHost, sess: HostSession, res: HostResult):
        if check:
            rc, out, err = sess.run(f"echo @@before; {du}")
        else:
            prune = prune_command(keep_storage, keep_duration, filters, all_)
            rc, out, err = sess.run(f"set -e\necho @@before; {du}\necho @@pruned; {prune}\necho @@after; {du}\n")
        if rc != 0:
            raise RemoteError(f"buildctl failed on {h.name}: {(err or out).strip()[-300:]}")
        got = sections(out)
        before = _usage(got.get("before"))
        res.info["before"] = before
        if check:
            rep.step(res, "cache", "usage", "ok", f"{human(before['total'])} in {before['records']} records, "
                                                   f"{human(before['reclaimable'])} reclaimable (nothing pruned)")
            return
        after = _usage(got.get("after"))
        pruned = [json.loads(l) for l in (got.get("pruned") or "").splitlines() if l.strip().startswith("{")]
        freed = sum(p.get("size", p.get("Size", 0)) for p in pruned)
        res.info.update(after=after, freed=freed, pruned_records=len(pruned))
        rep.step(res, "cache", "prune", "changed" if pruned else "ok",
                 f"{human(before['total'])} -> {human(after['total'])}, freed {human(freed)} "
                 f"({len(pruned)} records)")
    return _each(hosts, work)


# ------------------------------------------------------------------ status

def _cert_info(pem: bytes) -> dict:
    cert = x509.load_pem_x509_certificate(pem)
    left = (cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).days
    return {"expires": cert.not_valid_after_utc.isoformat(), "days_left": left,
            "issuer": cert.issuer.rfc4514_string(), "names": pki.cert_sans(cert)}


def status(inv: Inventory, hosts: list[BuildHost]) -> dict:
    ca = pki.load_ca(inv.pki_dir)
    doc: dict = {"ca": None, "hosts": {}, "clients": {}, "warnings": [], "failures": []}
    warn, failures = doc["warnings"], doc["failures"]
    if ca:
        doc["ca"] = _cert_info(ca.pem)
        if doc["ca"]["days_left"] < WARN_DAYS:
            warn.append(f"the CA expires in {doc['ca']['days_left']} days: run `invoke rotate-certs --ca`")
    for row in client_mod.client_rows(inv):
        if row["status"].startswith("revoked"):
            continue
        leaf = pki.client_paths(inv.pki_dir, row["name"])
        info = _cert_info(leaf.crt.read_bytes()) if leaf.crt.exists() else None
        doc["clients"][row["name"]] = {"address": row["address"], "certificate": info, "status": row["status"]}
        if info and info["days_left"] < WARN_DAYS:
            warn.append(f"client {row['name']}: certificate expires in {info['days_left']} days: "
                        f"run `invoke rotate-certs --client {row['name']}`")
    wanted_clients = {c.address for c in inv.clients.values()}

    def work(h: BuildHost, sess: HostSession, res: HostResult):
        server_crt = quote(h.buildkit.data_dir + "/tls/server.crt")
        # the roles' own facts (the ones provision reads), plus two of the report's own, in one command
        ctx = Context(inv=inv, host=h, tls={}, image_id=None, clients={})
        facts, _, f = gather(sess, ROLES, ctx, [], extra=[
            f"echo @@du; {CTL} du --format '{{{{json .}}}}' 2>/dev/null",
            f"echo @@servercert; base64 -w0 {server_crt} 2>/dev/null; echo"])
        engine, fw, bk = facts["engine"], facts["firewall"], facts["buildkitd"]
        container = [bk.container.status, bk.container.started] if bk.container else ["absent"]
        info = {"reachable": True, "docker": engine.docker or None, "compose": engine.compose or None,
                "buildkitd": {"state": container[0], "started": container[1] if len(container) > 1 else None,
                              "version": bk.version, "platforms": bk.platforms, "step_network": bk.step_network},
                "cache": _usage(f.get("du"))}
        if container[0] != "running":
            warn.append(f"{h.name}: buildkitd is {container[0]}: run `invoke provision --host {h.name}`")
        if f.get("servercert"):
            sc = _cert_info(base64.b64decode(f["servercert"]))
            missing = sorted(set(h.sans) - set(sc["names"]))
            extra = sorted(set(sc["names"]) - set(h.sans))
            sc.update(names_match=not missing and not extra, missing_names=missing, extra_names=extra)
            info["server_certificate"] = sc
            if missing or extra:
                warn.append(f"{h.name}: the server certificate's names {sc['names']} do not match the inventory "
                            f"({', '.join(h.sans)}): run `invoke provision --host {h.name}`")
            if sc["days_left"] < WARN_DAYS:
                warn.append(f"{h.name}: server certificate expires in {sc['days_left']} days: "
                            f"run `invoke rotate-certs --host {h.name}`")
        else:
            info["server_certificate"] = None
        if info["buildkitd"]["step_network"] == "host":
            warn.append(f"{h.name}: build steps share the host's network (step_network: host): every build can "
                        f"reach the host's own services")
        allowed = {addr for (addr, port, _name) in fw.client_rules() if port == h.buildkit.port}
        foreign = role_firewall.foreign_openings(fw, h.buildkit.port)
        ipv6 = fw.ipv6 == "yes"
        info["firewall"] = {"active": fw.active, "ipv6": ipv6,
                            "allowed": sorted(allowed), "missing": sorted(wanted_clients - allowed),
                            "extra": sorted(allowed - wanted_clients), "others_opening_port": foreign}
        if foreign:
            failures.append(f"{h.name}: rules not made by buildkit-ops open port {h.buildkit.port}/tcp to more than "
                            f"the clients: {'; '.join(foreign)}: run `invoke provision --host {h.name} "
                            f"--prune-clients` to delete them, or narrow them")
        if not ipv6:
            failures.append(f"{h.name}: ufw does not filter IPv6 (IPV6= in /etc/default/ufw): the BuildKit port may "
                            f"be open to everyone over IPv6: run `invoke provision --host {h.name}`")
        if info["firewall"]["missing"] or info["firewall"]["extra"] or not info["firewall"]["active"]:
            warn.append(f"{h.name}: the firewall allowlist differs from the inventory's clients "
                        f"(missing {info['firewall']['missing']}, extra {info['firewall']['extra']}): "
                        f"run `invoke provision --host {h.name}`")
        res.info.update(info)

    for r in _each(hosts, work):
        if r.error:
            doc["hosts"][r.host] = {"reachable": False, "error": r.error}
            warn.append(f"{r.host}: unreachable: {r.error}")
        else:
            doc["hosts"][r.host] = {k: v for k, v in r.info.items() if k != "remote_commands"}
    return doc


# ------------------------------------------------------------------ doctor

def doctor(inv: Inventory, client: Client) -> list[tuple[str, str, str]]:
    """From the client's point of view: (host, 'ok'|'problem', one line) per finding."""
    try:
        sess = client_mod.ClientSession(client)
    except RemoteError as e:
        return [("-", "problem", f"cannot reach {client.name} to look: {e}")]
    b = quote(client.builder)
    parts = [f'D=${{DOCKER_CONFIG:-$HOME/.docker}}; F="$D/buildkit-ops/"{quote(safe_dirname(client.builder))}\n'
             'echo @@cert; base64 -w0 "$F/cert.pem" 2>/dev/null; echo\n'
             'echo @@ca; base64 -w0 "$F/ca.pem" 2>/dev/null; echo\n'
             f'echo @@builder; docker buildx inspect {b} >/dev/null 2>&1 && echo present || echo absent\n']
    for i, h in enumerate(inv.hosts.values()):  # sections are numbered: no value is ever a marker
        a, p = quote(h.client_address), h.buildkit.port
        if not is_ip(h.client_address):
            parts.append(f"echo @@resolve{i}; getent hosts {a} >/dev/null && echo ok || echo fail\n")
        parts.append(f"echo @@tcp{i}; if command -v nc >/dev/null; then nc -z -w3 {a} {p} && echo open || "
                     f"echo blocked; else timeout 4 bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' _ {a} {p} 2>/dev/null "
                     f"&& echo open || echo blocked; fi\n")
    try:
        rc, out, err = sess.run("".join(parts))
    finally:
        sess.close()
    f = sections(out)
    findings: list[tuple[str, str, str]] = []
    cert = x509.load_pem_x509_certificate(base64.b64decode(f["cert"])) if f.get("cert") else None
    bundle = x509.load_pem_x509_certificates(base64.b64decode(f["ca"])) if f.get("ca") else []
    trusted = [c for c in (pki.load_ca(inv.pki_dir), pki.load_ca(inv.pki_dir / "next")) if c is not None]
    now = dt.datetime.now(dt.timezone.utc)
    for i, h in enumerate(inv.hosts.values()):
        where = f"{h.client_address}:{h.buildkit.port}"
        if f.get(f"resolve{i}") == "fail":
            findings.append((h.name, "problem", f"name resolution: {h.client_address} does not resolve on "
                                                f"{client.name}; add it to DNS or /etc/hosts there"))
            continue
        if f.get(f"tcp{i}") != "open":
            findings.append((h.name, "problem", f"TCP blocked: {client.name} cannot connect to {where} (the "
                                                f"firewall allows only inventory clients); run `invoke add-client "
                                                f"{client.name}` if {client.address} is really its address"))
            continue
        if cert is None:
            findings.append((h.name, "problem", f"no client certificate on {client.name} (builder "
                                                f"{client.builder}): run `invoke add-client {client.name}`"))
            continue
        if cert.not_valid_after_utc < now:
            findings.append((h.name, "problem", f"expired certificate: {client.name}'s client certificate "
                                                f"expired on {cert.not_valid_after_utc:%Y-%m-%d}; run "
                                                f"`invoke rotate-certs --client {client.name}`"))
            continue
        if not any(pki.signed_by(cert, ca) for ca in trusted):
            findings.append((h.name, "problem", f"TLS unknown CA: {client.name}'s certificate was issued by "
                                                f"{cert.issuer.rfc4514_string()}, which {h.name} does not trust; run "
                                                f"`invoke add-client {client.name}`"))
            continue
        srv_path = pki.server_paths(inv.pki_dir, h.name).crt
        srv = pki.load_cert(srv_path) if srv_path.exists() else None
        if srv is not None and not any(_issued_by(srv, c) for c in bundle):
            findings.append((h.name, "problem", f"TLS unknown CA: {client.name} does not trust {h.name}'s "
                                                f"certificate (its ca.pem is from another CA); run "
                                                f"`invoke add-client {client.name}`"))
            continue
        if srv is not None and h.client_address not in pki.cert_sans(srv):
            findings.append((h.name, "problem", f"name mismatch: {h.name}'s certificate names "
                                                f"{pki.cert_sans(srv)}, not {h.client_address}; run "
                                                f"`invoke provision --host {h.name}`"))
            continue
        if f.get("builder") != "present":
            findings.append((h.name, "problem", f"builder missing: {client.name} has no buildx builder "
                                                f"{client.builder}; run `invoke add-client {client.name}`"))
            continue
        findings.append((h.name, "ok", f"{client.name} -> {where}: reachable, certificates valid and trusted, "
                                       f"builder {client.builder} present"))
    return findings


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:
        return False
