"""Fixtures of the lab tests that start from brand-new build hosts (module-scoped: each module that asks gets its
own fresh droplets)."""
from __future__ import annotations

import pytest
from helpers import (
    INV,
    PKI,
    ROOT,
    VARIANTS,
    invoke,
    invoke_json,
    login,
    put_client_files,
    restore_inventory,
    write_project,
)

from buildkit_ops.pki import certs as pki


@pytest.fixture(scope="module")
def fresh(lab):
    """build1 and build2 as brand-new droplets, and laptop's client files."""
    lab.reset("build1")
    lab.reset("build2")
    yield lab
    for f in ROOT.glob(f"{VARIANTS}*.yml"):
        f.unlink()


@pytest.fixture(scope="module")
def provisioned(fresh):
    rc, doc, err = invoke_json("provision", "--host", "build1")
    assert rc == 0, err
    # the early TLS probe meets a closed port on a fresh host: no library noise about it
    assert "Secsh" not in err and "Traceback" not in err
    return doc


@pytest.fixture(scope="module")
def client_files(provisioned, fresh, tmp_path_factory):
    """A client certificate for laptop, signed by the CA (what add-client will issue)."""
    pki_dir = PKI
    ca = pki.load_ca(pki_dir)
    crt, key = pki.issue(ca, "laptop", 30)
    files = {"ca.crt": (pki_dir / "ca.crt").read_bytes(), "client.crt": crt, "client.key": key}
    put_client_files(fresh, "laptop", files)
    other = pki.create_ca(tmp_path_factory.mktemp("other-ca"), 30, name="someone else's CA")
    ocrt, okey = pki.issue(other, "laptop", 30)
    put_client_files(fresh, "laptop", {"ca.crt": files["ca.crt"], "client.crt": ocrt, "client.key": okey},
                     where="/root/bk-other")
    return files


@pytest.fixture(scope="module")
def reg(lab):
    return lab.status()["registry"]


@pytest.fixture(scope="module")
def served(lab, reg):
    """Both hosts provisioned, laptop a client logged in to the registry with a project to build; the session
    inventory put back afterwards."""
    saved = INV.read_text()
    assert invoke("provision").returncode == 0
    r = invoke("add-client", "laptop")
    assert r.returncode == 0, r.stderr
    login(lab, "laptop", reg)
    write_project(lab, "laptop", reg)
    yield lab
    restore_inventory(saved)
    invoke("provision")
