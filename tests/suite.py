"""The whole suite (`./bkops test` without arguments) on three labs at once.

A lab test spends much of its time waiting: on SSH round trips, apt, a container starting, a build step's sleep.
Run one after the other, the lab modules leave this machine's cores half idle (a whole run on one lab took 2215 s
at 50 % CPU on 2 cores). So the suite runs as three pytest processes side by side: the first runs the unit tests
and the lab modules not named below on the default lab (inventory.yml's, 10.77.0.0/24); the others run the
modules of their slot in LABS, each on a lab of its own (its own machines, registry, state folder, PKI and session
inventory: lab/machines.py Lab.for_slot). Every module still passes alone, on the default lab, and in any order:
the split only says where each runs in this command.

LABS is chosen by measured durations (pytest's durations of a whole run on one lab, in seconds after each name) so
that the three processes end at about the same time; its modules name machines through the lab (lab.address,
lab.container, helpers.PKI, STATE), never by the default lab's literal addresses. The default lab keeps the
modules that run the README and the guides as written (their text names the default lab's addresses). With
arguments (`./bkops test -k vpn`), one process runs as before, on the default lab.

The other processes' output is kept in files and printed after the first's; the command fails if any failed."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LABS = {
    "b": ["test_lifecycle.py",        # 289
          "test_vpn.py",              # 192
          "test_dpkg_lock.py",        # 100
          "test_fence.py",            # 83
          "test_report.py",           # 18
          "test_private_network.py",  # 11
          "test_versions.py",         # 11
          "test_build_limits.py"],    # 193     897 in all
    "c": ["test_fleet.py",            # 135
          "test_gateway.py",          # 127
          "test_tenants.py",          # 103
          "test_provision.py",        # 61
          "test_current_buildkit.py",  # 48
          "test_engine.py",           # 47
          "test_narrow_runs.py",      # 42
          "test_handshake_flood.py",  # 40
          "test_progress.py",         # 37
          "test_revocation.py",       # 23
          "test_image_pins.py",       # 10
          "test_ownership.py",        # 100
          "test_package.py",          # 40
          "test_ci_trust.py"],        # 78      891 in all
}                                     # the default lab: the other modules (750: test_ci_runner 52, test_spill 77,
#                                       test_team 25)
#                                       and the unit tests (76)


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if argv:
        return subprocess.call([*pytest, "tests", *argv], cwd=ROOT)
    lab_modules = sorted(p.name for p in (ROOT / "tests" / "lab").glob("test_*.py"))
    elsewhere = [m for modules in LABS.values() for m in modules]
    unknown = sorted(set(elsewhere) - set(lab_modules))
    if unknown:
        print(f"tests/suite.py: LABS names modules that do not exist: {', '.join(unknown)}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    others = {}
    for slot, modules in LABS.items():
        log = ROOT / f".test-lab-{slot}.log"
        with open(log, "w") as out:
            others[slot] = (log, subprocess.Popen([*pytest, *(f"tests/lab/{m}" for m in modules)], cwd=ROOT,
                                                  stdout=out, stderr=subprocess.STDOUT,
                                                  env={**os.environ, "BKOPS_LAB_SLOT": slot}))
    rcs = {"": subprocess.call([*pytest, "tests/unit", *(f"tests/lab/{m}" for m in lab_modules
                                                            if m not in elsewhere)], cwd=ROOT)}
    for slot, (log, process) in others.items():
        rcs[slot] = process.wait()
        print(f"\n======== lab {slot}: {', '.join(LABS[slot])} ========", flush=True)
        sys.stdout.write(log.read_text())
    print(f"\nthe suite on {len(rcs)} labs in {time.monotonic() - t0:.0f} s: " + ", ".join(
        f"lab {slot or 'default'} rc={rc}" for slot, rc in rcs.items()), flush=True)
    return next((rc for rc in rcs.values() if rc), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
