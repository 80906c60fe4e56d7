"""The lab's tasks: `lab.up/down/status/run` and `demo`, the whole story on the lab.

An Invoke collection of its own, beside the product's tasks (tasks.py at the top of the checkout joins
them); the product package never imports the lab."""
from __future__ import annotations

import functools
import json
import sys
import time

from invoke import Collection, Exit

from buildkit_ops import inventory as inv_mod
from buildkit_ops.cli import cli_errors, fail, task
from buildkit_ops.report.results import err
from buildkit_ops.tasks import add_client, provision

from .machines import Lab, LabError


def lab_errors(fn):
    """A lab problem is one clear message and a non-zero exit, like the product's own errors."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LabError as e:
            print(f"lab error: {e}", file=sys.stderr)
            raise Exit(code=1) from None
    return wrapper


DEMO_DOCKERFILE = """FROM {registry}/lab/busybox:latest
RUN echo "built on the shared BuildKit server, $(date -u)" > /hello.txt
COPY message.txt /message.txt
CMD ["cat", "/hello.txt", "/message.txt"]
"""


@task(help={"host": "build host to use (default build1)", "client": "lab client machine (default laptop)"})
@lab_errors
@cli_errors
def demo(c, host="build1", client="laptop"):
    """The whole story on the lab: lab up, provision, add a client, build and push with the client's login."""
    t0 = time.monotonic()
    lab = Lab()
    say = lambda m: err.print(f"[bold cyan]==>[/bold cyan] {m}")  # noqa: E731
    say("bringing the lab up")
    lab.up(log=lambda m: print(m, file=sys.stderr))
    # every build host: the client's builder has a node on each, and adding it opens each host's firewall, which
    # needs a provisioned host (on a fresh lab, build2 too)
    say("provisioning the build hosts")
    provision(c)
    say(f"adding {client} as a client")
    add_client(c, client)
    st = lab.status()["registry"]
    ref = f"{st['address']}/demo/hello:latest"
    say(f"on {client}: docker login {st['address']} (the developer's own credentials), then build and push")
    r = lab.run(client, f"docker login -u {st['username']} --password-stdin {st['address']}", capture=True,
                input=st["password"])
    if r.returncode:
        fail(f"docker login on {client} failed: {r.stderr.strip()}")
    project = ("mkdir -p /root/demo && cat > /root/demo/Dockerfile && "
               "echo 'hello from buildkit-ops' > /root/demo/message.txt")
    lab.run(client, project, capture=True, input=DEMO_DOCKERFILE.format(registry=st["address"]))
    r = lab.run(client, f"docker buildx build --builder buildkit-ops --progress plain --push -t {ref} /root/demo",
                capture=True)
    print(r.stderr[-2500:], file=sys.stderr)
    if r.returncode:
        fail(f"the build on {client} failed")
    inv = inv_mod.load(inv_mod.DEFAULT_INVENTORY)
    h = inv.hosts[host]
    clients = ", ".join(c.name for c in inv.clients.values())
    err.print(f"""
[bold green]Done in {time.monotonic() - t0:.0f}s.[/bold green]
  server   : buildkitd on {h.address}:{h.buildkit.port} (mutual TLS only; firewall open to: {clients})
  client   : {client} uses the buildx builder `buildkit-ops` (one node per build host)
  image    : {ref}  (pushed by buildkitd with {client}'s own registry login; the server stores none)
  try      : invoke lab.run {client} 'docker buildx build --builder buildkit-ops --push -t {ref} /root/demo'
             (every step CACHED), invoke provision --check, invoke list-clients, invoke lab.status""")


# ------------------------------------------------------------------ the lab
@task(help={"machine": "only these machines (comma-separated); default: all",
            "build_hosts": "how many build hosts, build1..buildN at 10.77.0.11.. (1 to 8, default 2)"})
@lab_errors
@cli_errors
def lab_up(c, machine=None, build_hosts=2):
    """Bring up the local lab: build1, build2 (or more), laptop, laptop2, intruder and a registry."""
    Lab().up(machine.split(",") if machine else None, log=lambda m: print(m, file=sys.stderr),
             build_hosts=int(build_hosts))


@task()
@lab_errors
@cli_errors
def lab_down(c):
    """Remove the lab's machines, volumes and network (cached images stay)."""
    Lab().down(log=lambda m: print(m, file=sys.stderr))


@task(help={"json": "print machines, addresses and the registry login as JSON"})
@lab_errors
@cli_errors
def lab_status(c, json_=False):
    """Show the lab's machines, their addresses and the registry login."""
    st = Lab().status()
    if json_:
        print(json.dumps(st, indent=2))
        return
    for name, m in st["machines"].items():
        print(f"{name:10} {m['address']:15} {m['role']:9} {m['state']}")
    r = st["registry"]
    print(f"registry   {r['address']}  user={r['username']} password={r['password']}")


@task(positional=["machine", "command"], help={"machine": "lab machine name", "command": "shell command, as root"})
@lab_errors
@cli_errors
def lab_run(c, machine, command):
    """Run a shell command on a lab machine as root; exits with its status."""
    rc = Lab().run(machine, command).returncode
    if rc:
        raise Exit(code=rc)


lab = Collection("lab")
lab.add_task(lab_up, "up")
lab.add_task(lab_down, "down")
lab.add_task(lab_status, "status")
lab.add_task(lab_run, "run")

