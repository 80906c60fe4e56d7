"""Private mode on the lab (docs/vpn.md): with build1's `private_address`, its gateway listens on that address only
(not on a second address of the host), the firewall opens the port there only, and a client of that network
builds."""
from __future__ import annotations

import pytest
import yaml
from helpers import INV, LAB, build, invoke, lab_ip, login, restore_inventory, write_project

pytestmark = pytest.mark.lab

B1 = LAB.address("build1")
SECOND = lab_ip(111)          # a second address of build1's


@pytest.fixture(scope="module")
def reg(lab):
    return lab.status()["registry"]


def reaches(lab, machine: str, address: str, port: int = 1234) -> bool:
    return lab.run(machine, f"nc -z -w3 {address} {port}", capture=True).returncode == 0


def test_private_mode_listens_on_the_named_address_only(lab, reg):
    saved = INV.read_text()
    data = yaml.safe_load(saved)
    data["all"]["children"]["buildhosts"]["hosts"]["build1"]["private_address"] = B1
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    lab.run("build1", f"ip addr add {SECOND}/24 dev eth0 2>/dev/null; true", capture=True)   # a second address
    try:
        r = invoke("provision")
        assert r.returncode == 0, r.stdout + r.stderr
        listeners = lab.run("build1", "ss -ltnH 'sport = :1234'", capture=True).stdout
        assert f"{B1}:1234" in listeners and "0.0.0.0:1234" not in listeners, listeners
        assert invoke("add-client", "laptop").returncode == 0
        login(lab, "laptop", reg)
        write_project(lab, "laptop", reg)
        r = build(lab, "laptop", f"{reg['address']}/team/private:1")
        assert r.returncode == 0, r.stderr[-2000:]
        assert reaches(lab, "laptop", B1) and not reaches(lab, "laptop", SECOND)
    finally:
        lab.run("build1", f"ip addr del {SECOND}/24 dev eth0 2>/dev/null; true", capture=True)
        restore_inventory(saved)
        assert invoke("provision", "--host", "build1").returncode == 0
