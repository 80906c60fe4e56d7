"""status: per host, what runs and how healthy it is, against the inventory: versions, buildkitd and the network
its build steps run on, cache (against the GC limit and the disk), certificates (expiry, names), the firewall
(clients, IPv6, rules of others), and the builds of the last 24 hours and 7 days (insights.py). It reads the
same facts provision reads (the roles' facts.sh), plus its own, in one command per host."""
from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509

from buildkit_ops.engine import role_path
from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.runner import gather
from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet import placement
from buildkit_ops.flows.cache_prune import CTL
from buildkit_ops.insights import builds as insights
from buildkit_ops.insights import capacity
from buildkit_ops.insights.usage import usage
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records
from buildkit_ops.report.results import HostResult
from buildkit_ops.roles.buildkitd.exports import BuildkitdFacts
from buildkit_ops.roles.engine.exports import EngineFacts
from buildkit_ops.roles.firewall.exports import FirewallFacts, foreign_openings

WARN_DAYS = 30


def _cert_info(pem: bytes) -> dict[str, Any]:
    cert = x509.load_pem_x509_certificate(pem)
    left = pki.days_left(cert)
    return {"expires": cert.not_valid_after_utc.isoformat(), "days_left": left,
            "issuer": cert.issuer.rfc4514_string(), "names": pki.cert_sans(cert)}


def status(inv: Inventory, hosts: list[BuildHost]) -> dict[str, Any]:
    roles = role_path.load(inv.file.parent, "host")
    ca = pki.load_ca(inv.pki_dir)
    doc: dict[str, Any] = {"ca": None, "hosts": {}, "clients": {}, "warnings": [], "failures": []}
    warn, failures = doc["warnings"], doc["failures"]
    if ca:
        doc["ca"] = _cert_info(ca.pem)
        if doc["ca"]["days_left"] < WARN_DAYS:
            warn.append(f"the CA expires in {doc['ca']['days_left']} days: run `invoke rotate-certs --ca`")
    for row in client_records.client_rows(inv):
        if row["status"].startswith("revoked"):
            continue
        leaf = pki.client_paths(inv.pki_dir, row["name"])
        info = _cert_info(leaf.crt.read_bytes()) if leaf.crt.exists() else None
        doc["clients"][row["name"]] = {"address": row["address"], "home": row["home"], "certificate": info,
                                       "status": row["status"]}
        if info and info["days_left"] < WARN_DAYS:
            warn.append(f"client {row['name']}: certificate expires in {info['days_left']} days: "
                        f"run `invoke rotate-certs --client {row['name']}`")
    wanted_clients = {c.address for c in inv.clients.values()}
    now = dt.datetime.now(dt.timezone.utc)

    def work(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        server_crt = quote(h.buildkit.data_dir + "/tls/server.crt")
        # the roles' own facts (the ones provision reads), plus two of the report's own, in one command
        facts, _, f = gather(sess, roles, h, [], extra=[
            f"echo @@du; {CTL} du --format '{{{{json .}}}}' 2>/dev/null",
            f"echo @@servercert; base64 -w0 {server_crt} 2>/dev/null; echo",
            capacity.DISK_SNIPPET, insights.history_snippet(CTL), insights.connections_snippet()])
        engine: EngineFacts = facts["engine"]
        fw: FirewallFacts = facts["firewall"]
        bk: BuildkitdFacts = facts["buildkitd"]
        container = [bk.container.status, bk.container.started] if bk.container else ["absent"]
        cache: dict[str, Any] = dict(usage(f.get("du")))
        info: dict[str, Any] = {"reachable": True, "docker": engine.docker or None, "compose": engine.compose or None,
                "buildkitd": {"state": container[0], "started": container[1] if len(container) > 1 else None,
                              "version": bk.version, "platforms": bk.platforms, "step_network": bk.step_network},
                "cache": cache}
        builds = insights.parse(f.get("history", ""))
        insights.attribute(builds, insights.parse_connections(f.get("connections", "")),
                           {c.name: c.address for c in inv.clients.values()})
        info["builds"] = insights.summary(builds, now)
        disk, warning = capacity.assess(h.buildkit.gc, cache["total"], f.get("disk"))
        cache.update(disk)
        if warning:
            warn.append(f"{h.name}: {warning}")
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
        if bk.step_network == "host":
            warn.append(f"{h.name}: build steps share the host's network (step_network: host): every build can "
                        f"reach the host's own services")
        allowed = {addr for (addr, port, _name) in fw.client_rules() if port == h.buildkit.port}
        foreign = foreign_openings(fw, h.buildkit.port)
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
        missing, extra = sorted(wanted_clients - allowed), sorted(allowed - wanted_clients)
        if missing or extra or not fw.active:
            warn.append(f"{h.name}: the firewall allowlist differs from the inventory's clients "
                        f"(missing {missing}, extra {extra}): "
                        f"run `invoke provision --host {h.name}`")
        res.info.update(info)

    homes = placement.homes(list(inv.clients.values()), list(inv.hosts.values()))
    for r in each_host(hosts, work):
        if r.error:
            doc["hosts"][r.host] = {"reachable": False, "error": r.error}
            warn.append(f"{r.host}: unreachable: {r.error}")
        else:
            doc["hosts"][r.host] = {k: v for k, v in r.info.items() if k != "remote_commands"}
        doc["hosts"][r.host]["home_of"] = sorted(c for c, h in homes.items() if h == r.host)
    return doc
