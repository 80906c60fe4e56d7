"""The role contract: what a role is to the runner. docs/roles.md says how to write one.

A role is a folder (roles/<name>/ of this repository, or of the operator's, beside the inventory) holding
  facts.sh      what the role needs to know about its target, printed as `@@name` sections; the values it needs
                (a port, an image) come in as quoted environment variables from `fact_env`. Every role's facts
                run in ONE round trip, and each role parses its own sections once (`parse`) into a typed value;
  __init__.py   `ROLE`: `prepare` (the role's own typed input, made on the operator machine from the inventory,
                the target and the command line's options), the files it manages (`files`, rendered from its
                templates/), a pure `plan` from input and facts to Steps, its handlers (run once, at the end,
                when a step notified them), and `verify` after the changes;
  exports.py    the names others may use (a container, a socket, a log path): nothing else of a role is read
                from outside its folder;
  templates/    Jinja templates of its files, rendered through the escaping environment of their file type.

A role works on one kind of target: build hosts ("host", as root over SSH) or client machines ("client", as
the client's user: over SSH, on this machine, or, for a CI runner, in a folder on this machine). A role may be
applied once per item of its target (Ansible's role with a loop): `instances` names the items (buildkitd's: the
host's daemons), and each instance is a play of its own, with its own input, facts, files, handlers and verify;
the item named None is the role's default instance, whose names are the role's own.
"""
from __future__ import annotations

import copy
import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from buildkit_ops.engine.render import File, FileState, render
from buildkit_ops.inventory import Inventory


class Session(Protocol):
    """Runs a shell script on a target; `upload`, a local file piped (gzip-compressed) into its stdin, telling
    `progress` the bytes sent so far; `notes`, each `@@note ` line the script writes on stderr, as it comes."""
    commands: int

    def run(self, script: str, upload: str | None = None, timeout: float = 600,
            progress: Callable[[int], None] | None = None,
            notes: Callable[[str], None] | None = None) -> tuple[int, str, str]: ...

    def close(self) -> None: ...


class Outcome(enum.Enum):
    """What a flow may need to know of a run, whatever role caused it (never read from a step's title)."""
    RESTART = "restart"        # a service that serves builds was restarted (its handler ran)
    RELOAD = "reload"          # a service read its new files without a restart (builds in flight untouched)
    IN_PLACE = "in place"      # a service took a change while running: no restart, no reload
    FIREWALL = "firewall"      # the step that decides who may reach the BuildKit port


@dataclass
class Step:
    role: str
    name: str
    changed: bool
    detail: str = ""
    script: str = ""                 # shell run on the target when changed (after the packages are installed)
    diff: str | None = None          # unified diff for check mode
    notify: list[str] = field(default_factory=list)
    upload: str | None = None        # local file piped into the script's stdin (e.g. docker load)
    file: File | None = None         # the managed file whose content this step writes (check mode diffs it)
    packages: list[str] = field(default_factory=list)   # installed first, in one transaction with every role's
    apt_source: str = ""             # script that adds an apt source the packages come from (before the update)
    outcome: Outcome | None = None
    sensitive: bool = False          # its script carries a secret (a key): never shown, not even in check mode
    tells: bool = False              # lines its script prints as `bkops-told: ...` are added to its report
    instance: str | None = None      # the role's instance that planned it (set by the runner; None: the default)
    pending: bool = False            # outside this run's roles (--roles): reported as pending, never applied


@dataclass(frozen=True)
class Options:
    """What this run knows beyond the inventory: the command line's options, and for clients' roles what the
    build hosts report they build for. Each role's prepare takes what it needs of it."""
    check: bool = False
    wait: int = 300                  # seconds a restart waits for running builds
    force: bool = False              # restart even when builds still run after `wait`
    prune_clients: bool | frozenset[str] = False   # close firewall rules of clients no longer in the inventory
    platforms: Mapping[str, str] = field(default_factory=dict)   # build host -> platforms its buildkitd reports
    lock_wait: int = 120             # seconds to wait for another run's lock on a host
    # the roles this run applies (None: all); the others are planned too, and what they would change is reported
    # as pending ("run provision"), never applied behind the operator's back
    roles: frozenset[str] | None = None
    # what the operator confirmed for removal: a tenant's instances (remove-tenant --confirm; their cache goes with
    # them), a client (remove-client: its builder and proxy)
    remove: frozenset[str] = frozenset()
    # machines whose own key pairs (the VPN's) are made anew in this run (rotate-certs --vpn-keys)
    renew: frozenset[str] = frozenset()


T = TypeVar("T")          # the target: a build host or a client
In = TypeVar("In")        # the role's own input
F = TypeVar("F")          # the role's parsed facts


@dataclass
class Context(Generic[T, In]):
    """What one role plans one target from: the target, and the input the role prepared for it."""
    target: T
    input: In
    rendered: list[File] | None = None    # the role's files, rendered once per run (plan, handler, runner)
    instance: str | None = None           # the instance's name (None: the role's default instance)
    item: Any = None                      # what this instance of the role is applied to (a daemon)


class PlanError(Exception):
    """Known before any change: the plan cannot be carried out (unsupported OS, port taken, ...)."""


class HandlerFailed(Exception):
    """A handler did not do its job; the message says why and what to do."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


@dataclass
class HandlerResult:
    detail: str
    extra_steps: list[tuple[str, str]] = field(default_factory=list)   # (name, detail) reported as changed
    sections: dict[str, str] = field(default_factory=dict)             # fresh facts printed by the handler


class Handler(Generic[T, In]):
    name = ""
    outcome: Outcome | None = None

    def script(self, ctx: Context[T, In]) -> str:
        raise NotImplementedError

    def result(self, ctx: Context[T, In], rc: int, out: dict[str, str], err: str) -> HandlerResult:
        raise NotImplementedError


class Templates:
    """Where a role's templates are found: the operator's templates/ beside the inventory first (an override
    keeps the file's name, and so the escaping of its type), then the role's own."""

    def __init__(self, *dirs: Path):
        self.dirs = dirs

    def path(self, name: str) -> Path:
        for d in self.dirs:
            if (d / name).is_file():
                return d / name
        raise FileNotFoundError(f"template {name} is in none of: {', '.join(map(str, self.dirs))}")

    def render(self, name: str, kind: str, **values: Any) -> str:
        return render(self.path(name), kind, **values)


class Role(Generic[T, In, F]):
    name = ""
    targets: ClassVar[str] = "host"          # "host" (build hosts) or "client" (client machines)
    after: ClassVar[str | None] = None       # an operator's role runs after this one (default: after all)
    handlers: ClassVar[dict[str, Handler[Any, Any]]] = {}
    verify_title = "verified"
    folder: Path = Path()                    # set by the loader
    templates: Templates = Templates()       # set by the loader

    def for_inventory(self, folder: Path, site_templates: Path | None) -> Role[T, In, F]:
        """This role as an inventory's run sees it: its folder, and templates overridden beside the inventory."""
        role = copy.copy(self)
        role.folder = folder
        own = folder / "templates"
        role.templates = Templates(*([site_templates] if site_templates else []), own)
        return role

    @property
    def facts_file(self) -> str:
        path = self.folder / "facts.sh"
        return path.read_text() if path.exists() else ""

    @property
    def facts_script(self) -> str:
        return self.facts_file

    @property
    def sentinel(self) -> str | None:
        """The first section the role's facts.sh prints, always: missing from the output, the snippet did not
        run at all."""
        m = re.search(r"^echo @@(\w+)", self.facts_file, re.M)
        return m.group(1) if m else None

    def instances(self, inv: Inventory, target: T) -> Sequence[Any]:
        """The items the role is applied to on this target, once each (default: once, the item None). Pure and
        cheap: status reads every instance's facts without preparing anything."""
        return (None,)

    def instance_name(self, item: Any) -> str | None:
        """An item's instance name, shown beside the role's (buildkitd[red]); None for the default instance."""
        return None

    def item_env(self, item: Any) -> dict[str, str]:
        """Values an instance's facts.sh needs of its item (a container's name), besides fact_env's."""
        return {}

    def prepare_item(self, inv: Inventory, target: T, options: Options, item: Any) -> In:
        """The input of one instance (default: prepare's, the same for every instance)."""
        return self.prepare(inv, target, options)

    def applies(self, target: T) -> bool:
        """Whether the role has anything to do with this target (a client without failover has no proxy)."""
        return True

    def prepare(self, inv: Inventory, target: T, options: Options) -> In:
        """The role's own input for this target, made on the operator machine (certificates, an allowlist)."""
        return None  # type: ignore[return-value]

    def fact_env(self, target: T) -> dict[str, str]:
        """Values facts.sh needs, from the target alone (facts describe the target, whatever is wanted of it)."""
        return {}

    def parse(self, sections: dict[str, str]) -> F:
        return None  # type: ignore[return-value]

    def files(self, ctx: Context[T, In]) -> list[File]:
        """The files the role manages on the target, rendered (pure). Callers use managed()."""
        return []

    def managed(self, ctx: Context[T, In]) -> list[File]:
        """files(ctx), rendered once per run (the runner, the plan and a handler all need them)."""
        if ctx.rendered is None:
            ctx.rendered = self.files(ctx)
        return ctx.rendered

    def plan(self, ctx: Context[T, In], facts: F, files: dict[str, FileState]) -> list[Step]:
        return []

    def info(self, facts: F) -> dict[str, Any]:
        """What the role tells of the target in the result (e.g. buildkitd's platforms)."""
        return {}

    def start_probe(self, ctx: Context[T, In], sess: Session) -> Any:
        """Begin a check that overlaps with reading the facts (e.g. a TLS handshake); given back to verify."""
        return None

    def verify(self, ctx: Context[T, In], facts: F, sess: Session, probe: Any, restarted: bool) -> str | None:
        """After the changes (never in check mode): prove the role's service works; the detail, or None."""
        return None


def instance_key(role: str, instance: str | None) -> str:
    """How one instance of a role is named everywhere (its facts, its report, --roles): role, or role[name]."""
    return role if instance is None else f"{role}[{instance}]"


def play_key(role: Role[Any, Any, Any], ctx: Context[Any, Any]) -> str:
    return instance_key(role.name, ctx.instance)
