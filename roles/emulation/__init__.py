"""emulation: run build steps of other architectures on this host (`emulate: [linux/arm64]`), with the
distribution's qemu-user-static and the kernel's binfmt_misc, as tonistiigi/binfmt does for Docker Desktop.

binfmt_misc is one table for the whole kernel: an emulator registered here serves every container on the
machine (on the lab, every lab machine). Entries are registered with the F flag (Debian's and Ubuntu's
binfmt.d files carry it): the kernel opens the emulator at registration, so it works inside buildkitd's
containers, which do not have it on their filesystem. buildkitd detects the emulators when it starts, so a
new one restarts it (drained first). Native hosts build faster: emulation is for the platforms a fleet lacks."""
from __future__ import annotations

from dataclasses import dataclass, field

from buildkit_ops.engine.contract import Context, Role, Step
from buildkit_ops.engine.render import FileState
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.steps import package_step
from buildkit_ops.inventory import BuildHost
from buildkit_ops.inventory.values import EMULATORS
from buildkit_ops.roles.buildkitd.exports import RESTART


@dataclass
class EmulationFacts:
    mounted: bool = False
    entries: dict[str, str] = field(default_factory=dict)   # emulator -> "enabled OPF" / "disabled ..." / "absent"
    installed: list[str] = field(default_factory=list)      # emulators whose binary and binfmt.d file exist

    def registered(self, emulator: str) -> bool:
        state, _, flags = self.entries.get(emulator, "absent").partition(" ")
        return state == "enabled" and "F" in flags


def parse(sections: dict[str, str]) -> EmulationFacts:
    entries = {}
    for line in (sections.get("binfmt") or "").splitlines():
        name, _, rest = line.partition(" ")
        entries[name] = rest.strip()
    return EmulationFacts(mounted=sections.get("binfmt_mounted") == "yes", entries=entries,
                          installed=(sections.get("qemu") or "").split())


def emulators(host: BuildHost) -> list[str]:
    return [EMULATORS[p] for p in host.emulate]


def register_script(emulator: str) -> str:
    """(Re)register one emulator from the package's binfmt.d line (Debian 12+, Ubuntu 22.04+), else through
    binfmt-support's update-binfmts: an entry without the F flag is removed first (the kernel refuses a second
    entry of the same name). binfmt_misc is the kernel's: whatever else registers the same emulator between the
    facts and this step (systemd-binfmt at boot, another machine of the lab on the same kernel) makes the write
    fail with "File exists"; the entry there is then judged like ours, by its F flag."""
    entry = quote(f"/proc/sys/fs/binfmt_misc/qemu-{emulator}")
    conf = quote(f"/usr/lib/binfmt.d/qemu-{emulator}.conf")
    name = quote(f"qemu-{emulator}")
    return (f"[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc\n"
            f"[ ! -e {entry} ] || echo -1 > {entry}\n"
            f"if [ -f {conf} ]; then\n"
            f"  grep -v '^#' {conf} | head -1 > /proc/sys/fs/binfmt_misc/register || [ -e {entry} ]\n"
            f"else update-binfmts --enable {name} || [ -e {entry} ]; fi\n"
            f"grep -q '^flags: .*F' {entry} || {{ echo 'qemu-{emulator} is registered without the F flag: "
            f"containers cannot use it' >&2; exit 1; }}\n")


def plan(host: BuildHost, facts: EmulationFacts) -> list[Step]:
    wanted = emulators(host)
    if not wanted:
        return []
    steps = []
    missing = [e for e in wanted if e not in facts.installed]
    steps.append(package_step("emulation", "qemu-user-static", ["qemu-user-static"] if missing else []))
    for platform, emulator in zip(host.emulate, wanted, strict=True):
        if facts.registered(emulator):
            steps.append(Step("emulation", f"binfmt {platform}", False, f"qemu-{emulator} enabled"))
        else:
            was = facts.entries.get(emulator, "absent")
            steps.append(Step("emulation", f"binfmt {platform}", True,
                              f"register qemu-{emulator} (was {was}); buildkitd restarts to detect it",
                              script=register_script(emulator), notify=[RESTART]))
    return steps


class EmulationRole(Role[BuildHost, None, EmulationFacts]):
    name = "emulation"

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return {"BKOPS_EMULATORS": " ".join(emulators(target))}

    def parse(self, sections: dict[str, str]) -> EmulationFacts:
        return parse(sections)

    def plan(self, ctx: Context[BuildHost, None], facts: EmulationFacts, files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.target, facts)


ROLE = EmulationRole()
