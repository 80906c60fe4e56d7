"""Package installs wait their turn, and a provision cut off at any moment converges on the next run. On a fresh
droplet (build2: its emulation role lacks qemu-user-static), another process holding the dpkg lock
(as unattended-upgrades does on a fresh cloud VM) makes provision wait, then succeed; a provision interrupted with
Ctrl-C leaves its remote apt-get running, and the next one waits for it instead of failing."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from helpers import INV, ROOT, invoke_json

pytestmark = pytest.mark.lab

HOLD = ("import fcntl, time\n"
        "f = open('/var/lib/dpkg/lock-frontend', 'w')\n"
        "fcntl.lockf(f, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(25)\n")   # (longer than a fresh droplet takes to reach its packages, three labs at once)


def converged(host: str) -> None:
    rc, doc, err = invoke_json("provision", "--host", host)
    assert rc == 0 and not doc["changed"], err


def test_provision_waits_for_the_package_lock_another_process_holds(lab):
    lab.reset("build2")
    lab.run("build2", "cat > /tmp/hold.py", input=HOLD)
    lab.run("build2", "setsid nohup python3 /tmp/hold.py > /tmp/hold.log 2>&1 &")
    for _ in range(50):
        if lab.run("build2", "cat /tmp/hold.log", capture=True).stdout.strip() == "held":
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the lock holder did not start")
    rc, doc, err = invoke_json("provision", "--host", "build2")
    assert rc == 0, err
    [packages] = [s for s in doc["hosts"]["build2"]["steps"] if s["role"] == "packages"]
    assert packages["status"] == "changed", packages
    assert "qemu-user-static" in packages["detail"]
    assert "waited for the package lock held by process" in packages["detail"] and "(python3)" in packages["detail"]
    assert lab.run("build2", "pgrep -f '[h]old.py'").returncode == 1   # it waited until the holder let go
    converged("build2")


@pytest.mark.parametrize("after", [2.0, 6.0, 10.0])
def test_a_provision_interrupted_at_any_moment_converges_on_the_next_run(lab, after):
    lab.reset("build2")
    run = subprocess.Popen([sys.executable, "-m", "invoke", "provision", "--host", "build2", "-i", str(INV)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    run.send_signal(signal.SIGINT)
    # (it ends once the remote step it was in ends: an apt transaction downloading from Debian's archive can take
    # minutes on a slow day; what is asserted is that it ends cleanly and the next run converges)
    _, err = run.communicate(timeout=300)
    assert "Traceback" not in err
    rc, doc, err = invoke_json("provision", "--host", "build2")
    assert rc == 0, err
    assert "buildkitd v0.13.2" in doc["hosts"]["build2"]["buildkitd"]
    converged("build2")
