"""buildkit-ops: turn a fresh VM into a shared, mutual-TLS BuildKit server.

Run `invoke --list` for the tasks and `invoke --help TASK` for each one's options.
"""
from __future__ import annotations

import functools
import json
import sys

from invoke import Collection, Exit, task

from buildkit_ops import inventory as inv_mod
from buildkit_ops.lab import Lab, LabError
from buildkit_ops.output import Reporter, emit_json
from buildkit_ops.provision import provision as run_provision

INV_HELP = "inventory file (default: inventory.yml)"


def cli_errors(fn):
    """Turn our errors into one clear message on stderr and a non-zero exit."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except inv_mod.InventoryError as e:
            print(f"error: {e}", file=sys.stderr)
            raise Exit(code=2)
        except LabError as e:
            print(f"lab error: {e}", file=sys.stderr)
            raise Exit(code=1)
    return wrapper


def not_built(what: str, issue: int):
    print(f"error: `{what}` is not built yet (issue #{issue}); nothing was done.", file=sys.stderr)
    raise Exit(code=3)


@task(help={"host": "build host(s): a name, a comma-separated list, a group, or 'all' (default)",
            "check": "show what would change (diffs and commands) and change nothing",
            "json": "print the per-host result as JSON on stdout",
            "inventory": INV_HELP})
@cli_errors
def provision(c, host=None, check=False, json_=False, inventory="inventory.yml"):
    """Make build host(s) a mutual-TLS BuildKit server: engine, PKI, config, firewall, service."""
    inv = inv_mod.load(inventory)
    hosts = inv.select(host)
    rep = Reporter()
    results = run_provision(inv, hosts, check, rep)
    rep.recap(results, check)
    if json_:
        emit_json(results, check=check)
    if any(r.failed for r in results):
        raise Exit(code=1)


@task(help={"name": "client name (its certificate's CN)", "address": "client address, when NAME is new",
            "inventory": INV_HELP})
@cli_errors
def add_client(c, name, address=None, inventory="inventory.yml"):
    """Issue a client certificate, open the firewall for it, and set up its buildx builder."""
    inv_mod.load(inventory)
    not_built("add-client", 4)


@task(help={"ca": "also rotate the CA, with an overlap window", "inventory": INV_HELP})
@cli_errors
def rotate_certs(c, ca=False, inventory="inventory.yml"):
    """Reissue server and client certificates without stranding clients; the cache survives."""
    inv_mod.load(inventory)
    not_built("rotate-certs", 5)


@task(help={"host": "build host(s), a group, or 'all' (default)", "keep_storage": "keep at most this much cache",
            "check": "show the cache usage and change nothing", "inventory": INV_HELP})
@cli_errors
def cache_prune(c, host=None, keep_storage=None, check=False, inventory="inventory.yml"):
    """Prune the BuildKit cache by size, age and filters; report what was freed."""
    inv_mod.load(inventory).select(host)
    not_built("cache-prune", 5)


# ------------------------------------------------------------------ the lab
@task(help={"machine": "only these machines (comma-separated); default: all"})
@cli_errors
def lab_up(c, machine=None):
    """Bring up the local lab: build1, build2, laptop, laptop2, intruder and a registry."""
    Lab().up(machine.split(",") if machine else None, log=lambda m: print(m, file=sys.stderr))


@task
@cli_errors
def lab_down(c):
    """Remove the lab's machines, volumes and network (cached images stay)."""
    Lab().down(log=lambda m: print(m, file=sys.stderr))


@task(help={"json": "print machines, addresses and the registry login as JSON"})
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

ns = Collection(provision, add_client, rotate_certs, cache_prune, lab)
