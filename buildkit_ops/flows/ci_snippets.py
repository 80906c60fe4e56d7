"""What a CI job of a trust runs (`bkops ci-snippet TRUST`): ask its CI for an OIDC token with the trust's audience
(GitHub Actions: `permissions: id-token: write`; GitLab CI: `id_tokens:`), make a key and a CSR (the key never
leaves the job), trade token and CSR for a certificate of an hour at most at the first build host that answers
(the certificate is good on every host: one intermediate per trust), and create the buildx builder with one node
per build host. Nothing in it is secret: the CA's public certificate and the hosts' names and ports.

Made by serializers (shell quoting, YAML dump): no inventory value can add a line or a command."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote as url_quote

from buildkit_ops.ci_trust.rules import Trust
from buildkit_ops.ci_trust.server import PEM_CHAIN
from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet.failover import endpoint
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.pki import certs
from buildkit_ops.roles.ci_runner.exports import workflow_yaml

KINDS = ("github", "gitlab", "shell")
TOKEN_VAR = "BKOPS_ID_TOKEN"


@dataclass(frozen=True)
class Target:
    node: str            # the builder node's name
    exchange: str        # https://HOST:CI_PORT/v1/certificate
    endpoint: str        # tcp://HOST:PORT
    servername: str


def targets(inv: Inventory, trust: Trust, builder: str) -> list[Target]:
    """The build hosts the trust's jobs build on: those of its rules' tenants (every host when a rule names
    none)."""
    tenants = {r.tenant for r in trust.rules}
    names = set(inv.hosts) if None in tenants else {h for t in tenants if t for h in inv.tenants[t].hosts}
    return [_target(h, builder) for h in inv.hosts.values() if h.name in names]


def _target(h: BuildHost, builder: str) -> Target:
    addr = h.client_address
    host = f"[{addr}]" if ":" in addr else addr
    return Target(f"{builder}-{h.name}", f"https://{host}:{h.buildkit.ci_port}/v1/certificate",
                  f"tcp://{endpoint(h)}", addr)


def shell(ca_pem: bytes, hosts: list[Target], builder: str) -> str:
    """The POSIX shell that does the exchange and makes the builder, given the token in $BKOPS_ID_TOKEN. Needs
    curl, openssl and docker buildx; the files go to a 0700 folder under $RUNNER_TEMP (or $TMPDIR, /tmp)."""
    ca = ca_pem.decode("ascii")
    if "BKOPS_CA" in ca or not ca.startswith("-----BEGIN CERTIFICATE-----"):
        raise ValueError("not the CA's certificate")
    urls = " ".join(quote(t.exchange) for t in hosts)
    creds = '"cacert=$d/ca.pem,cert=$d/cert.pem,key=$d/key.pem'
    lines = [
        "# buildkit-ops: trade this job's OIDC token ($BKOPS_ID_TOKEN) for a client certificate of an hour at most,",
        f"# then create the buildx builder {builder} (one node per build host). Needs curl, openssl, docker buildx.",
        "set -eu",
        'd="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/buildkit-ops"',
        'rm -rf "$d"; mkdir -m 700 -p "$d"',
        "cat > \"$d/ca.pem\" <<'BKOPS_CA'", ca.rstrip("\n"), "BKOPS_CA",
        'openssl ecparam -name prime256v1 -genkey -noout -out "$d/key.pem"',
        'openssl req -new -key "$d/key.pem" -subj /CN=ci-job -outform DER | openssl base64 -A > "$d/csr.b64"',
        f'printf \'{{"token":"%s","csr":"%s"}}\' "${TOKEN_VAR}" "$(cat "$d/csr.b64")" > "$d/request.json"',
        "got=",
        f"for url in {urls}; do",
        f'  code=$(curl -sS --max-time 20 --cacert "$d/ca.pem" -H {quote("Accept: " + PEM_CHAIN)} '
        '-H "Content-Type: application/json" --data-binary @"$d/request.json" -o "$d/answer" -w "%{http_code}" '
        '"$url" || true)',
        '  if [ "$code" = 200 ]; then got=1; break; fi',
        '  echo "buildkit-ops: $url answered ${code:-nothing}: $(cat "$d/answer" 2>/dev/null || true)" >&2',
        '  case "$code" in 4*) exit 1 ;; esac   # refused: another host would refuse it too',
        "done",
        '[ -n "$got" ] || { echo "buildkit-ops: no build host answered" >&2; exit 1; }',
        'mv "$d/answer" "$d/cert.pem"; rm -f "$d/request.json" "$d/csr.b64"',
        f"docker buildx rm {quote(builder)} >/dev/null 2>&1 || true",
    ]
    for i, t in enumerate(hosts):
        lines.append(f"docker buildx create --name {quote(builder)}{' --append' if i else ''} --node {quote(t.node)} "
                     f"--driver remote --driver-opt {creds}\"{quote(',servername=' + t.servername)} "
                     f"{quote(t.endpoint)}")
    lines.append(f"docker buildx use {quote(builder)}")
    return "\n".join(lines) + "\n"


def github(trust: Trust, body: str, builder: str) -> str:
    """A step of a GitHub Actions job: its token asked for with the trust's audience."""
    audience = quote("&audience=" + url_quote(trust.audience, safe=""))
    ask = (f'{TOKEN_VAR}=$(curl -sS -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" '
           f'"$ACTIONS_ID_TOKEN_REQUEST_URL"{audience} | '
           """sed -n 's/.*"value":"\\([^"]*\\)".*/\\1/p')\n""" f"export {TOKEN_VAR}\n")
    head = (f"# GitHub Actions: the job needs `permissions: id-token: write` (and contents: read); no secret is\n"
            f"# stored. Put this step before `docker buildx build --builder {builder} --push ...`.\n")
    step = [{"name": "buildkit-ops builder (OIDC: a certificate of an hour, no stored secret)", "shell": "sh",
             "run": ask + body}]
    return head + workflow_yaml(step)


def gitlab(trust: Trust, body: str, builder: str) -> str:
    """A job template of GitLab CI: its token in $BKOPS_ID_TOKEN with the trust's audience (`id_tokens:`)."""
    head = ("# GitLab CI: extend this template (the runner's image needs curl, openssl and docker buildx):\n"
            f"#   build: {{extends: .buildkit-ops,\n"
            f"#           script: [docker buildx build --builder {builder} --push -t ... .]}}\n")
    job = {".buildkit-ops": {"id_tokens": {TOKEN_VAR: {"aud": trust.audience}}, "before_script": [body]}}
    return head + workflow_yaml(job)


def snippet(inv: Inventory, trust_name: str, kind: str, builder: str = "buildkit-ops") -> str:
    trust = inv.ci_trust[trust_name]
    body = shell(certs.trust_bundle(inv.pki_dir), targets(inv, trust, builder), builder)
    if kind == "github":
        return github(trust, body, builder)
    if kind == "gitlab":
        return gitlab(trust, body, builder)
    return "#!/bin/sh\n" + body

