"""The engine role for real: a host without Docker gets Docker Engine and Compose v2 from the
distribution's packages, then the whole provision runs. The lab has no mirror of its own, so the
test serves the packages this machine downloads as a small apt repository on the lab bridge."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from helpers import invoke_json

pytestmark = pytest.mark.lab

PORT = 8765
BOOKWORM = ["docker.io", "containerd", "runc", "tini"]


@pytest.fixture(scope="module")
def apt_repo(lab, tmp_path_factory):
    repo = tmp_path_factory.mktemp("apt-repo")
    for suite, pkgs in (("bookworm", BOOKWORM),):
        pool = repo / "pool" / suite
        pool.mkdir(parents=True)
        subprocess.run(["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root",
                        *[f"{p}/{suite}" for p in pkgs]], cwd=pool, check=True, capture_output=True)
        dist = repo / "dists" / suite / "main" / "binary-amd64"
        dist.mkdir(parents=True)
        packages = subprocess.run(["apt-ftparchive", "packages", f"pool/{suite}"], cwd=repo, check=True,
                                  capture_output=True, text=True).stdout
        (dist / "Packages").write_text(packages)
        release = subprocess.run(["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Codename={suite}",
                                  "-o", f"APT::FTPArchive::Release::Suite={suite}", "release",
                                  f"dists/{suite}"], cwd=repo, check=True, capture_output=True, text=True).stdout
        (repo / "dists" / suite / "Release").write_text(release)
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(PORT), "--bind", f"{lab.subnet}.1",
                               "--directory", str(repo)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield f"http://{lab.subnet}.1:{PORT}"
    server.terminate()
    server.wait()
    shutil.rmtree(repo, ignore_errors=True)


@pytest.fixture
def bare_build2(lab):
    lab.reset("build2")
    yield lab
    lab.reset("build2")   # (its apt sources name this module's repository, gone after it)


def test_a_host_without_docker_gets_it_from_packages(bare_build2, apt_repo):
    lab = bare_build2
    # Docker's packages from the repository above (or the mirror); Compose v2 from trixie, whose source the engine
    # role adds; the rest the shipped inventory asks for (qemu-user-static for build2's emulation) from
    # the distribution
    r = lab.run("build2", "systemctl stop docker.socket docker containerd; "
                          "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq docker.io docker-compose containerd "
                          "runc tini >/dev/null && "
                          f"echo 'deb [trusted=yes] {apt_repo} bookworm main' >> /etc/apt/sources.list && "
                          "rm -f /etc/apt/sources.list.d/trixie-compose.sources /etc/apt/preferences.d/trixie-compose && "
                          "grep -c '^Start-Date' /var/log/apt/history.log; ! command -v dockerd && echo removed",
                capture=True)
    assert r.stdout.strip().endswith("removed"), r.stdout + r.stderr
    transactions_before = int(r.stdout.split()[0])
    rc, doc, err = invoke_json("provision", "--host", "build2")
    assert rc == 0, err
    steps = doc["hosts"]["build2"]["steps"]
    engine = next(s for s in steps if s["role"] == "engine")
    assert engine["status"] == "changed" and engine["detail"] == "install docker.io docker-compose/trixie"
    [packages] = [s for s in steps if s["role"] == "packages"]
    assert packages["status"] == "changed" and "docker.io docker-compose/trixie" in packages["detail"]
    # the engine role wrote the trixie source from the host's own mirror, pinned low; one apt transaction installed
    # every role's packages (Docker's, and what the other roles lacked)
    r = lab.run("build2", "cat /etc/apt/sources.list.d/trixie-compose.sources /etc/apt/preferences.d/trixie-compose; "
                          "echo @@; grep -c '^Start-Date' /var/log/apt/history.log; "
                          "awk '$1==\"deb\"{print $2; exit}' /etc/apt/sources.list", capture=True)
    source, _, rest = r.stdout.partition("@@")
    transactions_after, mirror = rest.split()
    assert f"URIs: {mirror}\nSuites: trixie\n" in source and "Pin: release n=trixie\nPin-Priority: 100" in source
    assert int(transactions_after) == transactions_before + 1, r.stdout
    assert "buildkitd v0.13.2" in doc["hosts"]["build2"]["buildkitd"]
    r = lab.run("build2", "docker version --format '{{.Server.Version}}'; docker compose version --short",
                capture=True)
    assert r.stdout.split()[1].startswith("2."), r.stdout
    rc, doc, err = invoke_json("provision", "--host", "build2")
    assert rc == 0 and not doc["changed"], err
