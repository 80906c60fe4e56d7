"""Images pinned on first pull, on the lab: the gateway's image named by tag alone in a registry (the lab's,
standing in for Docker Hub), no archive. The first host to pull it records its digest in images.lock beside the
inventory; then the tag is moved to other bytes (busybox: no gateway could start from it), and the
second host still gets the pinned digest, and its gateway answers."""
from __future__ import annotations

import subprocess

import pytest
from helpers import LAB, ROOT, STATE, buildhosts, inventory_variant, invoke, login

from buildkit_ops.engine import image_pins

pytestmark = pytest.mark.lab

TAG = "lab/haproxy:pinned"


def push_from_laptop(lab, image: str, ref: str) -> None:
    """Tag an image laptop has and push it to the lab registry (laptop trusts the registry and is logged in)."""
    r = lab.run("laptop", f"docker tag {image} {ref} && docker push -q {ref}", capture=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def registry_image(lab):
    """The lab's HAProxy image under a tag in the lab registry; both hosts able to pull from it (its CA and a
    login: what a private registry asks of a host) and without the image yet."""
    reg = lab.status()["registry"]
    ref = f"{reg['address']}/{TAG}"
    login(lab, "laptop", reg)
    with open(STATE / "images" / "haproxy.tar", "rb") as archive:
        subprocess.run(["docker", "exec", "-i", LAB.container("laptop"), "docker", "load", "-q"], stdin=archive, check=True,
                       capture_output=True)
    push_from_laptop(lab, "buildkit-ops/haproxy:lab", ref)
    ca = (STATE / "registry" / "ca.crt").read_text()
    for host in ("build1", "build2"):
        lab.run(host, f"mkdir -p /etc/docker/certs.d/{reg['address']} && cat > /etc/docker/certs.d/{reg['address']}/ca.crt",
                capture=True, input=ca)
        assert lab.run(host, f"docker login -u {reg['username']} --password-stdin {reg['address']}", capture=True,
                       input=reg["password"]).returncode == 0
        lab.run(host, f"docker rmi -f {ref}", capture=True)
    lock = ROOT / image_pins.FILE
    lock.unlink(missing_ok=True)
    yield lab, ref
    lock.unlink(missing_ok=True)
    for host in ("build1", "build2"):
        lab.run(host, f"docker logout {reg['address']}; rm -rf /etc/docker/certs.d/{reg['address']}", capture=True)
    assert invoke("provision").returncode == 0     # (the session inventory's gateway image again)


def pulled_from_registry(ref: str):
    def edit(data):
        bk = data["all"]["vars"]["buildkit"]
        bk["gateway_image"] = ref
        bk.pop("gateway_image_archive", None)
        for h in buildhosts(data).values():
            h.get("buildkit", {}).pop("gateway_image_archive", None)
    return edit


def host_digest(lab, host: str, ref: str) -> str | None:
    out = lab.run(host, image_pins.FACT % ref, capture=True).stdout
    return image_pins.digest_for(image_pins.split_fact(out)[1], ref)


def test_the_first_pull_pins_the_tag_and_a_moved_tag_never_reaches_another_host(registry_image):
    lab, ref = registry_image
    inv = inventory_variant("pins", pulled_from_registry(ref))
    lock = ROOT / image_pins.FILE
    r = invoke("provision", "--host", "build1", "-i", inv)
    assert r.returncode == 0, r.stderr
    pinned = image_pins.read(lock).get(ref)
    assert pinned and pinned == host_digest(lab, "build1", ref), lock.read_text() if lock.exists() else "no lock"
    # the tag moves to other bytes in the registry
    r = lab.run("laptop", f"docker pull -q {lab.status()['registry']['address']}/lab/busybox:latest", capture=True)
    assert r.returncode == 0, r.stderr
    push_from_laptop(lab, f"{lab.status()['registry']['address']}/lab/busybox:latest", ref)
    r = invoke("provision", "--host", "build2", "-i", inv)
    assert r.returncode == 0, r.stderr
    assert host_digest(lab, "build2", ref) == pinned
    assert "answers over mutual TLS" in r.stderr and f"pull the pinned {pinned[:19]}" in r.stderr, r.stderr[-3000:]
    r = invoke("provision", "--host", "build2", "-i", inv)        # and again: nothing to do
    assert r.returncode == 0 and "no changes" in r.stderr.lower(), r.stderr[-2000:]
    assert image_pins.read(lock) == {ref: pinned}
