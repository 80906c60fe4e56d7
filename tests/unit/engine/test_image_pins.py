"""images.lock: a tag pulled from a registry is pinned by the first host that pulls it; every later host and run
gets that digest (pulled by digest, tagged, so the compose file keeps the tag); a digest or an archive pins
already; the first writer wins when hosts pull at once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from buildkit_ops.engine import image_pins

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


@pytest.mark.parametrize("ref,archive,pinnable", [("moby/buildkit:v0.35.1", None, True),
                                                  (f"moby/buildkit:v0.35.1@{A}", None, False),
                                                  ("buildkit-ops/buildkit:v0.13.2", ".lab/images/buildkit.tar", False)])
def test_only_a_tag_pulled_from_a_registry_is_pinned_here(ref, archive, pinnable):
    assert image_pins.pinnable(ref, archive) is pinnable


@pytest.mark.parametrize("ref,repo", [("haproxy:3.2", "haproxy"), ("10.77.0.5:5000/lab/haproxy:3.0",
                                                                    "10.77.0.5:5000/lab/haproxy"),
                                      ("10.77.0.5:5000/lab/haproxy", "10.77.0.5:5000/lab/haproxy")])
def test_the_repository_keeps_a_registry_port(ref, repo):
    assert image_pins.repository(ref) == repo


def test_the_host_fact_gives_the_digest_of_the_refs_own_repository():
    image_id, digests = image_pins.split_fact(f"sha256:id other/repo@{B} haproxy@{A}\n")
    assert image_id == "sha256:id" and image_pins.digest_for(digests, "haproxy:3.2") == A
    assert image_pins.digest_for(digests, "nginx:1") is None and image_pins.split_fact("") == ("", ())


def test_the_first_pin_wins_and_is_kept_with_a_header(tmp_path):
    lock = tmp_path / image_pins.FILE
    with ThreadPoolExecutor(8) as pool:
        got = set(pool.map(lambda d: image_pins.record(lock, "haproxy:3.2", d), [A, B] * 4))
    assert len(got) == 1 and image_pins.read(lock) == {"haproxy:3.2": got.pop()}
    assert lock.read_text().startswith("# Image digests pinned at their first pull")
    image_pins.record(lock, "moby/buildkit:v0.35.1", B)
    assert set(image_pins.read(lock)) == {"haproxy:3.2", "moby/buildkit:v0.35.1"}
    with pytest.raises(ValueError):
        image_pins.record(lock, "x:1", "sha256:short")


def test_a_pinned_tag_is_ok_on_a_host_with_the_pin_and_pulled_by_digest_elsewhere():
    ok = image_pins.pinned_step("gateway", "image haproxy:3.2", "haproxy:3.2", A, A, ["reload gateway"])
    assert not ok.changed
    moved = image_pins.pinned_step("gateway", "image haproxy:3.2", "haproxy:3.2", B, A, ["reload gateway"])
    assert moved.changed and moved.notify == ["reload gateway"]
    assert f"docker pull -q haproxy@{A}" in moved.script and f"docker tag haproxy@{A} haproxy:3.2" in moved.script
    absent = image_pins.pinned_step("gateway", "image haproxy:3.2", "haproxy:3.2", None, A, [])
    assert absent.changed and "the host has none" in absent.detail


def test_after_an_unpinned_pull_the_hosts_digest_is_recorded_with_one_command(tmp_path):
    lock = tmp_path / image_pins.FILE
    asked = []

    def run(script):
        asked.append(script)
        return 0, f"sha256:id haproxy@{B}\n", ""
    assert image_pins.record_from_host(lock, "haproxy:3.2", run) == B
    assert len(asked) == 1 and asked[0].endswith(" haproxy:3.2 2>/dev/null || true")   # (quoted: a plain word)
    assert image_pins.record_from_host(lock, "haproxy:3.2", lambda s: (0, f"sha256:id haproxy@{A}", "")) == B


@pytest.mark.parametrize("text,says", [("haproxy:3.2: [", "not YAML"), ("- haproxy:3.2\n", "not a mapping"),
                                       ("haproxy:3.2: sha256:abc\n", "'sha256:abc' is not a sha256 digest")])
def test_a_lock_file_that_is_not_exactly_pins_is_refused_with_what_to_do(tmp_path, text, says):
    lock = tmp_path / image_pins.FILE
    lock.write_text(text)
    with pytest.raises(image_pins.LockError, match=says) as e:
        image_pins.read(lock)
    assert str(lock) in str(e.value) and "nothing was changed" in str(e.value)


def test_provision_refuses_a_broken_lock_before_it_reaches_any_host(inv_path):
    from buildkit_ops import inventory
    from buildkit_ops.engine.contract import Options
    from buildkit_ops.flows.provision import provision
    from buildkit_ops.report.results import Reporter
    inv = inventory.load(inv_path)
    image_pins.lock_path(inv.file).write_text("haproxy:3.2: latest\n")
    with pytest.raises(image_pins.LockError, match="is not a sha256 digest"):
        provision(inv, list(inv.hosts.values()), Options(), Reporter(quiet=True))   # (no host answers here)
