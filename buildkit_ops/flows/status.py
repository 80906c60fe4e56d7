"""status: per host, what runs and how healthy it is, against the inventory: versions, buildkitd and the network
its build steps run on, cache (against the GC limit and the disk), certificates (expiry, names), the firewall
(clients, IPv6, rules of others), and the builds of the last 24 hours and 7 days (insights/builds.py). It reads
the same facts provision reads (the roles' facts.sh), plus its own, in one command per host; the result is a
typed tree (status_tree.py). The config doctor (insights/config_doctor.py) judges the GC rules and history
buildkitd applies; each tenant's own daemon is read and judged in status_tenants.py."""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from buildkit_ops.engine import image_pins, role_path
from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.runner import fact_plays, gather
from buildkit_ops.engine.session import SshSession
from buildkit_ops.fleet import placement
from buildkit_ops.flows import pki_backup, status_tenants, status_vpn
from buildkit_ops.flows.status_tree import (
    Buildkitd,
    Cache,
    Certificate,
    ClientStatus,
    Firewall,
    HostStatus,
    Revocations,
    ServerCertificate,
    Status,
)
from buildkit_ops.insights import builds as insights
from buildkit_ops.insights import capacity, config_doctor, daemon_builds
from buildkit_ops.insights.daemon_queries import disk_usage
from buildkit_ops.insights.usage import usage
from buildkit_ops.inventory import BuildHost, Inventory, security_floor
from buildkit_ops.inventory.daemons import daemons
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records, generation
from buildkit_ops.pki import crl as crls
from buildkit_ops.report.results import HostResult
from buildkit_ops.roles.buildkitd.exports import BuildkitdFacts
from buildkit_ops.roles.engine.exports import EngineFacts
from buildkit_ops.roles.firewall.exports import FirewallFacts, foreign_openings
from buildkit_ops.roles.gateway.exports import GatewayFacts, as_log_text, parse_audit

WARN_DAYS = 30


def certificate(pem: bytes) -> Certificate:
    cert = x509.load_pem_x509_certificate(pem)
    return Certificate(cert.not_valid_after_utc.isoformat(), pki.days_left(cert), cert.issuer.rfc4514_string(),
                       pki.cert_sans(cert))


def status(inv: Inventory, hosts: list[BuildHost]) -> Status:
    st = Status()
    ca = pki.load_ca_cert(inv.pki_dir)   # (status signs nothing: it works with the CA's key kept offline)
    if ca:
        st.ca = certificate(ca.public_bytes(serialization.Encoding.PEM))
        if st.ca.days_left < WARN_DAYS:
            st.warnings.append(f"the CA expires in {st.ca.days_left} days: run `invoke rotate-certs --ca`")
        backup = pki_backup.warning(inv.pki_dir)
        if backup:
            st.warnings.append(backup)
    for row in client_records.client_rows(inv):
        if row["status"].startswith("revoked"):
            continue
        leaf = pki.client_paths(inv.pki_dir, row["name"])
        cert = certificate(leaf.crt.read_bytes()) if leaf.crt.exists() else None
        st.clients[row["name"]] = ClientStatus(row["address"], row["home"], cert, row["status"])
        if cert and cert.days_left < WARN_DAYS:
            st.warnings.append(f"client {row['name']}: certificate expires in {cert.days_left} days: "
                               f"run `invoke rotate-certs --client {row['name']}`")
    roles = role_path.load(inv.file.parent, "host")
    issued = crls.issued(inv.pki_dir)
    mine = generation.current(inv.pki_dir)
    own_cas = crls.own_key_ids(inv.pki_dir)
    now = dt.datetime.now(dt.timezone.utc)

    def work(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        ds = daemons(inv, h)
        # the roles' own facts (the ones provision reads), plus the report's own, in one command: each daemon's
        # cache and history (the fleet's, then each tenant's)
        facts, _, f = gather(sess, fact_plays(inv, h, roles), h, [], extra=[
            *(f"echo @@{status_tenants.du_section(i)}; {disk_usage(d.ctl)} 2>/dev/null"
              for i, d in enumerate(ds)),
            capacity.DISK_SNIPPET, *daemon_builds.snippets(ds),
            insights.solves_snippet(int(insights.WINDOWS["7d"].total_seconds()))])   # (its longest window)
        per_daemon = daemon_builds.read(ds, f, parse_audit(as_log_text(f.get("solves", ""))))
        hs = host_status(inv, h, facts["engine"], facts["firewall"], facts["buildkitd"], facts["gateway"], f, now,
                         [b for builds in per_daemon.values() for b in builds])
        hs.crl = revocations(facts["gateway"], issued, mine, own_cas)
        status_tenants.read(ds, facts, f, per_daemon, now, hs)
        hs.vpn = status_vpn.read(inv, h, facts["vpn"], now)
        if inv.ci_trust:
            hs.ci_issuer = facts["ci_issuer"].state
        res.info["status"] = hs

    homes = placement.client_homes(inv)
    for r in each_host(hosts, work):
        home_of = sorted(c for c, h in homes.items() if h == r.host)
        if r.error:
            st.hosts[r.host] = HostStatus(False, home_of, error=r.error)
            st.warnings.append(f"{r.host}: unreachable: {r.error}")
            continue
        hs: HostStatus = r.info["status"]
        hs.home_of = home_of
        st.hosts[r.host] = hs
        judge(inv.hosts[r.host], hs, st)
    return st


def host_status(inv: Inventory, h: BuildHost, engine: EngineFacts, fw: FirewallFacts, bk: BuildkitdFacts,
                gw: GatewayFacts, f: dict[str, str], now: dt.datetime, builds: list[insights.Build]) -> HostStatus:
    """What one host's facts say, before any judgement; `builds`: of every daemon on it (the host's work)."""
    c = bk.container
    u = usage(f.get("du"))
    disk = capacity.disk(h.buildkit.gc, f.get("disk"))
    # (with a VPN no client has a rule of its own: the port opens inside the tunnel, for its peers; the CI trusts'
    # networks are let in beside the clients)
    wanted = {cl.address for cl in inv.clients.values()} | {n for t in inv.ci_trust.values() for n in t.networks} \
        if inv.vpn is None else set()
    allowed = fw.let_in(h.buildkit.port, wanted)
    return HostStatus(
        reachable=True, home_of=[], docker=engine.docker or None, compose=engine.compose or None,
        buildkitd=Buildkitd(c.status if c else "absent", c.started if c else None, bk.version, bk.platforms,
                            bk.step_network, config_doctor.findings(h, bk.version, bk.gc_rules, disk.disk_size),
                            bk.fence_missing if h.buildkit.step_network == "sandboxed" else [],
                            image_pins.digest_for(bk.image_digests, h.buildkit.image)),
        cache=Cache(u.records, u.total, u.reclaimable, disk.disk_size, disk.disk_free, disk.gc_limit),
        builds=insights.summary(sorted(builds, key=lambda b: b.created), now),
        server_certificate=server_certificate(h, gw.server_cert),
        firewall=Firewall(fw.active, fw.ipv6 == "yes", sorted(allowed), sorted(wanted - allowed),
                          sorted(allowed - wanted), foreign_openings(fw, h.buildkit.port, wanted)))


def revocations(gw: GatewayFacts, issued: tuple[int, str] | None, pki_generation: int,
                own_cas: frozenset[str]) -> Revocations:
    """The host's CRL and PKI generation (the gateway role's facts) against the operator's."""
    mine = issued[0] if issued else None
    where = crls.standing(gw.crl_number, mine, crls.of_this_pki(gw.crl_issuer, own_cas, mine))
    return Revocations(gw.crl_number, gw.crl_signed, where == "same", where, mine, gw.generation, pki_generation)


def server_certificate(h: BuildHost, pem: bytes) -> ServerCertificate | None:
    if not pem:
        return None
    c = certificate(pem)
    missing, extra = sorted(set(h.sans) - set(c.names)), sorted(set(c.names) - set(h.sans))
    return ServerCertificate(c.expires, c.days_left, c.issuer, c.names, not missing and not extra, missing, extra)


def judge(h: BuildHost, hs: HostStatus, st: Status) -> None:
    """The warnings and failures a reachable host's status calls for, each with the command that fixes it."""
    assert hs.buildkitd is not None and hs.cache is not None and hs.firewall is not None
    fix = f"run `invoke provision --host {h.name}`"
    disk = capacity.Disk(hs.cache.disk_size, hs.cache.disk_free, hs.cache.gc_limit)
    disk_warning = capacity.warning(h.buildkit.gc, disk, hs.cache.total)
    if disk_warning:
        st.warnings.append(f"{h.name}: {disk_warning}")
    if hs.buildkitd.state != "running":
        st.warnings.append(f"{h.name}: buildkitd is {hs.buildkitd.state}: {fix}")
    if hs.ci_issuer not in (None, "running"):
        st.failures.append(f"{h.name}: the CI issuer is {hs.ci_issuer}: CI jobs get no certificate there; {fix}")
    sc = hs.server_certificate
    if sc and not sc.names_match:
        st.warnings.append(f"{h.name}: the server certificate's names {sc.names} do not match the inventory "
                           f"({', '.join(h.sans)}): {fix}")
    if sc and sc.days_left < WARN_DAYS:
        st.warnings.append(f"{h.name}: server certificate expires in {sc.days_left} days: "
                           f"run `invoke rotate-certs --host {h.name}`")
    running = hs.buildkitd.version or h.buildkit.version
    if security_floor.missing(running):
        st.warnings.append(f"{h.name}: BuildKit {running} lacks security fixes a shared server needs "
                           f"({security_floor.describe(running)}): run {security_floor.FLOOR} or newer")
    st.warnings += [f"{h.name}: {finding}" for finding in hs.buildkitd.config_doctor]
    status_tenants.judge(h, hs, st)
    status_vpn.judge(h, hs, st)
    if hs.buildkitd.fence_missing and hs.buildkitd.state == "running":
        st.failures.append(f"{h.name}: the build-step fence is down ({len(hs.buildkitd.fence_missing)} rule(s) "
                           f"missing, e.g. {hs.buildkitd.fence_missing[0]}): build steps can reach the host and "
                           f"other containers; {fix} to put it back (no restart)")
    if hs.buildkitd.step_network == "host":
        st.warnings.append(f"{h.name}: build steps share the host's network (step_network: host): every build can "
                           f"reach the host's own services")
    if hs.crl and hs.crl.standing == "behind":
        st.failures.append(f"{h.name}: its gateway enforces CRL number {hs.crl.number} but the operator's newest is "
                           f"newer: a removed client may still build there; {fix}")
    if hs.crl and hs.crl.generation is not None and hs.crl.generation > (hs.crl.operator_generation or 0):
        st.warnings.append(f"{h.name}: last provisioned from PKI generation {hs.crl.generation}, this operator's "
                           f"state is at {hs.crl.operator_generation}: another operator's state is newer; import "
                           f"their newest export (`invoke pki-import FILE --replace`)")
    if hs.crl and hs.crl.standing == "ahead" and hs.crl.number is not None:
        st.failures.append(crls.stale_pki(h.name, hs.crl.number, hs.crl.signed, hs.crl.operator)
                           .replace("; nothing was changed", ""))
    fw = hs.firewall
    if fw.others_opening_port:
        st.failures.append(f"{h.name}: rules not made by buildkit-ops open port {h.buildkit.port}/tcp to more than "
                           f"the clients: {'; '.join(fw.others_opening_port)}: run `invoke provision --host "
                           f"{h.name} --prune-clients` to delete them, or narrow them")
    if not fw.ipv6:
        st.failures.append(f"{h.name}: ufw does not filter IPv6 (IPV6= in /etc/default/ufw): the BuildKit port may "
                           f"be open to everyone over IPv6: {fix}")
    if fw.missing or fw.extra or not fw.active:
        st.warnings.append(f"{h.name}: the firewall allowlist differs from the inventory's clients "
                           f"(missing {fw.missing}, extra {fw.extra}): {fix}")

