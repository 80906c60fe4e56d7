"""ci_issuer: the CI issuer on each build host (all.vars.ci_trust; docs/ci.md). A systemd unit runs the package's
ci_trust code (copied to the host, no other part of buildkit-ops) on the host's python3 with Debian's python3-jwt
and python3-cryptography: it checks a CI job's OIDC token against its trust's rules and signs the job's CSR with
the trust's intermediate (made on the operator machine: pki/ci_intermediates.py). It listens on a root-only unix
socket in the daemons' socket folder, which the gateway reaches (its server-only TLS port, `ci_port`). Its
files are root's, the keys and the configuration 0600. Without a trust in the inventory, all of it is taken away.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_ops import ci_trust
from buildkit_ops.ci_trust.rules import Trust
from buildkit_ops.engine.contract import Context, HandlerFailed, Options, Role, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.engine.steps import file_steps, package_step
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.daemons import SOCKET_DIR
from buildkit_ops.pki import ci_intermediates

UNIT = "buildkit-ops-ci-issuer"
UNIT_FILE = f"/etc/systemd/system/{UNIT}.service"
ETC = "/etc/buildkit-ops/ci-issuer"
CODE_DIR = "/usr/local/lib/buildkit-ops"
CODE = f"{CODE_DIR}/ci_trust"
STATE = "buildkit-ops-ci-issuer"            # systemd's StateDirectory: /var/lib/buildkit-ops-ci-issuer
SOCKET = f"{SOCKET_DIR}/ci-issuer.sock"     # /run/buildkit/ci-issuer.sock in the gateway's container
PACKAGE = Path(ci_trust.__file__).parent      # what the host runs: this package's ci_trust, nothing else of it
PACKAGES = ["python3-jwt", "python3-cryptography"]


@dataclass(frozen=True)
class IssuerInput:
    trusts: dict[str, Trust]
    intermediates: dict[str, tuple[bytes, bytes]]   # trust -> its intermediate's certificate and key (PEM)
    ca_files: dict[str, bytes] = field(default_factory=dict)   # trust -> the CA bundle of a private issuer


@dataclass
class IssuerFacts:
    unit: list[str] = field(default_factory=list)      # is-enabled, is-active
    python_ready: bool = False
    present: list[str] = field(default_factory=list)
    etc: list[str] = field(default_factory=list)       # the files in its folder

    @property
    def running(self) -> bool:
        return self.unit[:2] == ["enabled", "active"]

    @property
    def state(self) -> str:
        """running, or what is wrong: inactive, failed, activating (systemd's words), not enabled, absent."""
        if self.running:
            return "running"
        if len(self.unit) < 2:
            return "absent"
        return self.unit[1] if self.unit[1] != "active" else "not enabled"


def parse(sections: dict[str, str]) -> IssuerFacts:
    return IssuerFacts((sections.get("ci_unit") or "").split(), (sections.get("ci_python") or "").strip() == "ok",
                       (sections.get("ci_present") or "").split(), (sections.get("ci_etc") or "").split())


def prepare(inv: Inventory, options: Options) -> IssuerInput:
    if not inv.ci_trust:
        return IssuerInput({}, {})
    made = ci_intermediates.current(inv.pki_dir, sorted(inv.ci_trust), write=not options.check)
    pems = {name: ((ci_intermediates.folder(inv.pki_dir, name) / "ca.crt").read_bytes(),
                   (ci_intermediates.folder(inv.pki_dir, name) / "ca.key").read_bytes()) for name in made}
    for name in set(inv.ci_trust) - set(pems):   # check mode, before the intermediate is made
        pems[name] = (b"(to be made)\n", b"(secret)\n")
    ca_files = {name: Path(t.ca_file).read_bytes() for name, t in inv.ci_trust.items() if t.ca_file}
    return IssuerInput(dict(inv.ci_trust), pems, ca_files)


def config(i: IssuerInput) -> bytes:
    """The issuer's configuration (JSON: a serializer, never a template: no value can add a key)."""
    trusts = []
    for name, t in sorted(i.trusts.items()):
        trusts.append({"name": name, "issuer": t.issuer, "audience": t.audience, "minutes": t.minutes,
                       "ca_file": f"{ETC}/{name}.issuer-ca.pem" if name in i.ca_files else None,
                       "cert": f"{ETC}/{name}.crt", "key": f"{ETC}/{name}.key",
                       "rules": [{"claims": r.claims, "tenant": r.tenant, "role": r.role, "builds": r.builds,
                                  "queue": r.queue} for r in t.rules]})
    doc = {"socket": SOCKET, "spent": f"/var/lib/{STATE}/spent", "trusts": trusts}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def render(i: IssuerInput, templates: Any) -> list[File]:
    if not i.trusts:
        return []
    code = [File(f"{CODE}/{p.name}", p.read_bytes()) for p in sorted(PACKAGE.glob("*.py"))]
    unit = templates.render(f"{UNIT}.service.j2", "systemd", code_dir=CODE_DIR, socket_dir=SOCKET_DIR,
                            state_dir=f"/var/lib/{STATE}", state_name=STATE,
                            command=["/usr/bin/python3", "-m", "ci_trust.server", f"{ETC}/config.json"])
    keys = []
    for name, (crt, key) in sorted(i.intermediates.items()):
        keys += [File(f"{ETC}/{name}.crt", crt, 0o600, dir_mode=0o700),
                 File(f"{ETC}/{name}.key", key, 0o600, secret=True, dir_mode=0o700)]
    cas = [File(f"{ETC}/{name}.issuer-ca.pem", pem, 0o600, dir_mode=0o700) for name, pem in sorted(i.ca_files.items())]
    return [*code, File(f"{ETC}/config.json", config(i), 0o600, dir_mode=0o700), *keys, *cas,
            File(UNIT_FILE, unit.encode())]


def removal(facts: IssuerFacts) -> list[Step]:
    if not facts.present:
        return []
    return [Step("ci_issuer", UNIT, True, "removed (no ci_trust in the inventory)",
                 script=f"systemctl disable --now {command(UNIT)} 2>/dev/null || true\n"
                        f"{command('rm', '-rf', ETC, CODE, UNIT_FILE, SOCKET)}\nsystemctl daemon-reload\n")]


def plan(files: list[File], facts: IssuerFacts, states: dict[str, FileState]) -> list[Step]:
    if not files:
        return removal(facts)
    steps = [package_step("ci_issuer", "python3-jwt, python3-cryptography", [] if facts.python_ready else PACKAGES)]
    written = file_steps("ci_issuer", files, states, [])
    steps += written
    # a trust gone from the inventory leaves its key and certificate here: removed (the files not rendered)
    stale = sorted(set(facts.etc) - {f.path.removeprefix(ETC + "/") for f in files if f.path.startswith(ETC + "/")})
    if stale:
        steps.append(Step("ci_issuer", "files of trusts no longer listed", True, f"removed: {', '.join(stale)}",
                          script=command("rm", "-f", *(f"{ETC}/{n}" for n in stale)) + "\n"))
    if facts.running and not any(s.changed for s in written) and facts.python_ready:
        return steps + [Step("ci_issuer", "service", False, "running")]
    return steps + [Step("ci_issuer", "service", True, "enable and (re)start",
                         script=f"systemctl daemon-reload\n{command('systemctl', 'enable', '-q', UNIT)}\n"
                                f"{command('systemctl', 'restart', UNIT)}\n")]


# the proof it answers: a GET on its socket is refused with 405 (it takes POSTs of tokens only); waited for, as a
# restarted service needs a moment to bind
PROOF = r"""for i in $(seq 1 50); do
  if python3 - "$S" <<'EOF' 2>/dev/null; then echo answers; exit 0; fi
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b"GET /v1/certificate HTTP/1.1\r\nHost: issuer\r\nContent-Length: 0\r\n\r\n")
sys.exit(0 if s.recv(64).startswith(b"HTTP/1.1 405") else 1)
EOF
  sleep 0.2
done
exit 1
"""


class IssuerRole(Role[BuildHost, IssuerInput, IssuerFacts]):
    name = "ci_issuer"
    verify_title = "answers on its socket"

    parse = staticmethod(parse)

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> IssuerInput:
        return prepare(inv, options)

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return {"BKOPS_CI_UNIT": UNIT, "BKOPS_CI_ETC": ETC, "BKOPS_CI_CODE": CODE}

    def files(self, ctx: Context[BuildHost, IssuerInput]) -> list[File]:
        return render(ctx.input, self.templates)

    def plan(self, ctx: Context[BuildHost, IssuerInput], facts: IssuerFacts,
             files: dict[str, FileState]) -> list[Step]:
        return plan(self.managed(ctx), facts, files)

    def verify(self, ctx: Context[BuildHost, IssuerInput], facts: IssuerFacts, sess: Any, probe: Any,
               restarted: bool) -> str | None:
        if not ctx.input.trusts:
            return None
        rc, _, err = sess.run(f"S={command(SOCKET)}\n{PROOF}")
        if rc != 0:
            raise HandlerFailed(f"the CI issuer does not answer on {SOCKET}: see `journalctl -u {UNIT}` on the "
                                f"host", err.strip()[-300:])
        return f"{len(ctx.input.trusts)} trust(s), on {SOCKET}"


ROLE = IssuerRole()
