"""The whole suite (`./bkops test` without arguments) on two labs at once.

A lab test spends most of its time waiting: on SSH round trips, apt, a container starting, a build step's sleep.
Run one after the other, the lab modules leave this machine's cores half idle. So the suite runs as two pytest
processes side by side: the first runs the unit tests and most lab modules on the default lab (inventory.yml's,
10.77.0.0/24), the second runs SECOND_LAB's modules on a second lab of its own (10.79.0.0/24: its own machines,
registry, state folder, PKI and session inventory; lab/machines.py Lab.for_slot). Every module still passes alone,
on the default lab, and in any order: the split only says where each runs in this command.

SECOND_LAB is chosen by measured durations (pytest's slowest-durations list of a whole run) so that both
processes end at about the same time; its modules name machines through the lab (lab.address, lab.container,
helpers.PKI, STATE), never by the default lab's literal addresses. With arguments (`./bkops test -k vpn`), one
process runs as before, on the default lab.

The second process's output is kept in a file and printed after the first's; the command fails if either did."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SECOND_LAB = [                # seconds each took in a whole run on one lab (2 cores), 1091 of 2187 in all
    "test_lifecycle.py",      # 289
    "test_vpn.py",            # 237
    "test_fleet.py",          # 135
    "test_tenants.py",        # 103
    "test_dpkg_lock.py",      # 100
    "test_fence.py",          # 83
    "test_narrow_runs.py",    # 42
    "test_handshake_flood.py",  # 40
    "test_revocation.py",     # 23
    "test_report.py",         # 18
    "test_private_network.py",  # 11
    "test_versions.py",       # 11
]


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if argv:
        return subprocess.call([*pytest, "tests", *argv], cwd=ROOT)
    lab_modules = sorted(p.name for p in (ROOT / "tests" / "lab").glob("test_*.py"))
    unknown = sorted(set(SECOND_LAB) - set(lab_modules))
    if unknown:
        print(f"tests/two_labs.py: SECOND_LAB names modules that do not exist: {', '.join(unknown)}", file=sys.stderr)
        return 2
    first = ["tests/unit", *(f"tests/lab/{m}" for m in lab_modules if m not in SECOND_LAB)]
    second = [f"tests/lab/{m}" for m in SECOND_LAB]
    log = ROOT / ".test-second-lab.log"
    t0 = time.monotonic()
    with open(log, "w") as out:
        other = subprocess.Popen([*pytest, *second], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "BKOPS_LAB_SLOT": "b"})
        rc_first = subprocess.call([*pytest, *first], cwd=ROOT)
        rc_second = other.wait()
    print(f"\n======== the second lab's modules ({', '.join(SECOND_LAB)}) ========", flush=True)
    sys.stdout.write(log.read_text())
    took = time.monotonic() - t0
    print(f"\nthe suite on two labs: first process rc={rc_first}, second rc={rc_second}, {took:.0f} s in all",
          flush=True)
    return rc_first or rc_second


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
