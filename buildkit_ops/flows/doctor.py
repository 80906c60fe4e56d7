"""doctor: from a client's point of view, one line per build host saying what fails and how to fix it.

look() runs one script on the client (its certificate and CA bundle, its builder, name resolution and a TCP
connect to each host); diagnose() is the ladder, a pure function of what look() found: the first rung that
fails is the finding."""
from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509

from buildkit_ops.engine import session
from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.fleet import placement
from buildkit_ops.inventory import BuildHost, Client, Inventory
from buildkit_ops.inventory.values import is_ip
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import vpn_keys
from buildkit_ops.roles.buildx_builder.exports import folder_script
from buildkit_ops.roles.vpn.exports import tunnel

Finding = tuple[str, str, str]   # (host, "ok" | "problem", one line)


def doctor(inv: Inventory, client: Client) -> list[Finding]:
    """From the client's point of view: (host, 'ok'|'problem', one line) per finding."""
    try:
        found = look(inv, client)
    except RemoteError as e:
        return [("-", "problem", f"cannot reach {client.name} to look: {e}")]
    return diagnose(inv, client, found, dt.datetime.now(dt.timezone.utc))


def look(inv: Inventory, client: Client) -> dict[str, str]:
    """What the client machine has and reaches, in one script run there (sections)."""
    sess = session.to_client(client)
    parts = [folder_script(client),
             'echo @@cert; base64 -w0 "$F/cert.pem" 2>/dev/null; echo\n'
             'echo @@ca; base64 -w0 "$F/ca.pem" 2>/dev/null; echo\n'
             'echo @@builder; docker buildx inspect "$B" >/dev/null 2>&1 && echo present || echo absent\n']
    if inv.vpn is not None:   # the tunnel's rungs: its interface, each host's latest handshake (public keys only)
        parts.append(f"echo @@vpn_if; ip -o addr show dev {tunnel.IFACE} 2>/dev/null | grep -q . && echo up || "
                     f"echo down\necho @@vpn_handshakes; wg show {tunnel.IFACE} latest-handshakes 2>/dev/null\n"
                     f"echo @@now; date +%s\n")
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
    return sections(out)


def vpn_rung(inv: Inventory, client: Client, h: BuildHost, f: dict[str, str]) -> str | None:
    """With a VPN: the client's interface is up, and its tunnel to the host had a handshake lately."""
    if inv.vpn is None:
        return None
    if f.get("vpn_if") != "up":
        return (f"tunnel down: {client.name} has no {tunnel.IFACE} interface up; run `invoke add-client "
                f"{client.name}`")
    key = vpn_keys.read(inv.pki_dir, "hosts", h.name)
    seen = dict(line.split("\t", 1) for line in (f.get("vpn_handshakes") or "").splitlines() if "\t" in line)
    now = int(f["now"]) if (f.get("now") or "").isdigit() else 0
    raw = seen.get(key) if key else None
    last = int(raw) if raw and raw.isdigit() else 0
    if key is None or not last or now - last > tunnel.LIVE_SECONDS:
        return (f"no tunnel: no handshake with {h.name} " + (f"for {now - last} s" if last else "yet")
                + f" (UDP {inv.vpn.port} to {h.address} blocked on the way, or {h.name} does not know "
                  f"{client.name}'s key); run `invoke add-client {client.name}`")
    return None


def diagnose(inv: Inventory, client: Client, f: dict[str, str], now: dt.datetime) -> list[Finding]:
    """The ladder, per host: name resolution, TCP, a certificate at all, expiry, the CA that signed it, the CA
    the client trusts, the server's names, the builder. The first rung that fails is the finding."""
    findings: list[Finding] = []
    ranked = placement.order(client, inv.hosts_for(client))
    home = ranked[0].name if ranked else None
    cert = x509.load_pem_x509_certificate(base64.b64decode(f["cert"])) if f.get("cert") else None
    bundle = x509.load_pem_x509_certificates(base64.b64decode(f["ca"])) if f.get("ca") else []
    trusted = [c for c in (pki.load_ca_cert(inv.pki_dir), pki.load_ca_cert(inv.pki_dir / "next")) if c is not None]
    for i, h in enumerate(inv.hosts.values()):
        where = f"{h.client_address}:{h.buildkit.port}"
        tunnel_problem = vpn_rung(inv, client, h, f)
        if tunnel_problem:
            findings.append((h.name, "problem", tunnel_problem))
            continue
        if f.get(f"resolve{i}") == "fail":
            findings.append((h.name, "problem", f"name resolution: {h.client_address} does not resolve on "
                                                f"{client.name}; add it to DNS or /etc/hosts there"))
            continue
        if f.get(f"tcp{i}") != "open":
            line = (f"TCP blocked: {client.name} cannot connect to {where} (the firewall allows only inventory "
                    f"clients, or the host is down); run `invoke add-client {client.name}` if {client.address} "
                    f"is really its address")
            if h.name == home and len(ranked) > 1 and client.failover == "proxy":
                line += (f". It is {client.name}'s home host; its failover proxy sends its builds to the next host "
                         f"that serves the same platforms ({ranked[1].name} first) until {h.name} answers again")
            elif h.name == home and len(ranked) > 1:
                # buildx picks nodes by platform only and does not skip one that does not answer
                line += (f". It is {client.name}'s home host: buildx sends its builds here and does not fall "
                         f"back to the next node, so they fail while it cannot connect. Set `failover: proxy` on "
                         f"{client.name} in the inventory and run `invoke add-client {client.name}` to have them "
                         f"go to the next host automatically; or move it now: "
                         f"`invoke add-client {client.name} --home {ranked[1].name}`")
            findings.append((h.name, "problem", line))
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
        if not any(pki.issued_by(cert, ca) for ca in trusted):
            findings.append((h.name, "problem", f"TLS unknown CA: {client.name}'s certificate was issued by "
                                                f"{cert.issuer.rfc4514_string()}, which {h.name} does not trust; run "
                                                f"`invoke add-client {client.name}`"))
            continue
        srv_path = pki.server_paths(inv.pki_dir, h.name).crt
        srv = pki.load_cert(srv_path) if srv_path.exists() else None
        if srv is not None and not any(pki.issued_by(srv, c) for c in bundle):
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
