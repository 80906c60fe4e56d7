"""The tasks of CI jobs without long-lived secrets (docs/ci.md): what a trust's jobs run (ci-snippet), the
exchange itself for other CI systems and for testing (ci-login), and a trust's end (remove-ci-trust).
rotate-certs --ci-issuer is rotate-certs' (tasks.py)."""
from __future__ import annotations

import os
from pathlib import Path

from invoke.context import Context

from buildkit_ops import flows
from buildkit_ops.cli import INV_HELP, cli_errors, fail, task
from buildkit_ops.inventory import DEFAULT_INVENTORY, load, values
from buildkit_ops.report.results import Reporter


@task(help={"trust": "the CI trust (a key of all.vars.ci_trust)",
            "kind": "github (a step of a GitHub Actions job), gitlab (a GitLab CI job template) or shell",
            "builder": "the buildx builder's name (default buildkit-ops)", "inventory": INV_HELP})
@cli_errors
def ci_snippet(c: Context, trust: str, kind: str = "github", builder: str = "buildkit-ops",
               inventory: str = DEFAULT_INVENTORY) -> None:
    """Print what a CI job of this trust runs: its OIDC token traded for a certificate of an hour, and the buildx
    builder with a node per build host. Nothing in it is secret."""
    inv = load(inventory)
    if trust not in inv.ci_trust:
        fail(f"{inv.file}: there is no CI trust {trust!r} under all.vars.ci_trust (there are: "
             f"{', '.join(sorted(inv.ci_trust)) or 'none'})\n  fix: add it (inventory.yml documents ci_trust)", 2)
    if kind not in flows.ci_snippets.KINDS:
        fail(f"--kind {kind!r}: one of {', '.join(flows.ci_snippets.KINDS)}", 2)
    try:
        values.builder_name(builder)
    except values.BadValue as e:
        fail(f"--builder {builder!r}: {e.problem}\n  fix: {e.fix}", 2)
    print(flows.ci_snippets.snippet(inv, trust, kind, builder), end="")


@task(help={"host": "a build host's address or name as its certificate names it (repeat for each host; the first "
                    "that answers signs)",
            "ca": "the operator's CA certificate (ca.crt: public)", "token_file": "the job's OIDC token (default: "
                                                                               "$BKOPS_ID_TOKEN)",
            "out": "the folder for key.pem, cert.pem and ca.pem (made 0700)", "ci_port": "the hosts' ci_port "
                                                                                        "(default 1235)",
            "builder": "also create this buildx builder, one node per --host", "port": "the hosts' BuildKit port "
                                                                                     "(default 1234)"},
      iterable=["host"])
@cli_errors
def ci_login(c: Context, host: list[str], ca: str, out: str, token_file: str | None = None, ci_port: int = 1235,
             builder: str | None = None, port: int = 1234) -> None:
    """Trade a CI job's OIDC token for a client certificate of an hour at most (its key made here, never sent)."""
    if not host:
        fail("--host: name at least one build host", 2)
    if builder:
        try:
            values.builder_name(builder)
        except values.BadValue as e:
            fail(f"--builder {builder!r}: {e.problem}\n  fix: {e.fix}", 2)
    try:
        token = Path(token_file).read_text().strip() if token_file else os.environ.get("BKOPS_ID_TOKEN", "").strip()
        ca_pem = Path(ca).read_bytes()
    except OSError as e:
        fail(f"{e.filename}: cannot be read ({e.strerror})\n  fix: give the job's token file and the CA's "
             f"certificate (ca.crt)", 2)
    if not token:
        fail("no token: give --token-file FILE or set BKOPS_ID_TOKEN", 2)
    res = flows.ci_login.login(token, ca_pem, host, int(ci_port), Path(out))
    if builder:
        flows.ci_login.create_builder(builder, host, int(port), Path(out))
    print(flows.ci_login.summary(res) + (f"; builder {builder}" if builder else ""))


@task(help={"name": "the CI trust to remove", "inventory": INV_HELP})
@cli_errors
def remove_ci_trust(c: Context, name: str, inventory: str = DEFAULT_INVENTORY) -> None:
    """Remove a CI trust: out of the inventory, its intermediate revoked, every certificate it signed refused and
    its jobs' open connections ended on every build host."""
    rep = Reporter()
    rep.recap(flows.ci_trusts.remove_ci_trust(Path(inventory), name, rep))
