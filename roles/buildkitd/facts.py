"""One daemon's facts, parsed once: the image, the container, what it reports of itself, its fence; for the
default instance, the tenants' daemons found on the host."""
from __future__ import annotations

from dataclasses import dataclass, field

from buildkit_ops.engine import image_pins
from buildkit_ops.inventory import buildkit_versions as versions


@dataclass
class Container:
    status: str            # running, exited, ...
    started: str
    image: str
    config_hash: str       # the label provision set when it (re)created the container


@dataclass
class BuildkitdFacts:
    image_id: str = ""                 # of the pinned image on the host, empty when absent
    image_digests: tuple[str, ...] = ()   # its repo digests (repo@sha256:...): images.lock's pins
    container: Container | None = None
    version: str | None = None         # v0.13.2, from the running buildkitd
    workers: str = ""                  # `buildctl debug workers`
    step_network: str | None = None    # cni (sandboxed) or host
    data_dir_parents: list[str] = field(default_factory=list)   # `owner mode path` of data_dir and its ancestors
    gc_rules: list[dict[str, str]] = field(default_factory=list)  # the GC rules it applies, in the inventory's names
    fence_missing: list[str] = field(default_factory=list)   # the build steps' fence rules not in place (fence.sh)
    tenant_daemons: list[str] = field(default_factory=list)  # tenants with a container or cache volume on the host

    @property
    def platforms(self) -> str:
        """The first worker's platforms, as `buildctl debug workers` lists them."""
        for line in self.workers.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2:
                return parts[1]
        return ""

    def summary(self) -> str:
        workers = [l.split() for l in self.workers.splitlines()[1:] if l.strip()]
        ws = "; ".join(f"{w[0][:12]} {w[1] if len(w) > 1 else ''}" for w in workers) or "none"
        return f"buildkitd {self.version or '?'}, workers: {ws}"


def parse(sections: dict[str, str]) -> BuildkitdFacts:
    c = (sections.get("container") or "").split()
    version = (sections.get("version") or "").split()
    return BuildkitdFacts(
        image_id=image_pins.split_fact(sections.get("image", ""))[0],
        image_digests=image_pins.split_fact(sections.get("image", ""))[1],
        container=Container(c[0], c[1] if len(c) > 1 else "", c[2] if len(c) > 2 else "",
                            c[3] if len(c) > 3 else "") if c else None,
        version=version[2] if len(version) >= 3 else None,
        workers=sections.get("workers", ""), step_network=sections.get("step_network") or None,
        data_dir_parents=(sections.get("data_dir_parents") or "").splitlines(),
        gc_rules=versions.reported_rules(sections.get("gc_rules", "")),
        fence_missing=[line.removeprefix("missing: ") for line in (sections.get("fence") or "").splitlines()
                       if line.strip()],
        tenant_daemons=sorted(set((sections.get("tenant_daemons") or "").split())))
