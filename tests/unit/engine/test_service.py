"""The service ladder (buildkitd's daemons, the gateway, the failover proxy): the image from its archive, its pin
or its tag, then the service started, restarted for another configuration, or left alone. Each step is compared
whole: role, title, whether it changes, what it says, what it runs, what it uploads and notifies."""
from __future__ import annotations

from buildkit_ops.engine import service

PIN = "sha256:" + "a" * 64
LOAD = "docker load -q >/dev/null\n"


def whole(s):
    return (s.role, s.name, s.changed, s.detail, s.script, s.upload, s.notify)


def test_an_image_from_an_archive_is_loaded_when_the_host_has_another_id():
    want = service.Image("x:1", "/tmp/x.tar", "sha256:0123456789abcdef0123456789")
    assert whole(service.image_step("r", want, "sha256:old", (), ["h"])) == (
        "r", "image x:1", True, "load x.tar (sha256:0123456789ab)", LOAD, "/tmp/x.tar", ["h"])
    assert whole(service.image_step("r", want, "sha256:0123456789abcdef0123456789", (), ["h"])) == (
        "r", "image x:1", False, "sha256:0123456789ab", "", None, [])


def test_a_pinned_image_is_pulled_by_its_digest_unless_the_host_has_it():
    pulled = service.image_step("r", service.Image("x:1", pin=PIN), "sha256:old", (), ["h"])
    assert (pulled.role, pulled.name, pulled.changed, pulled.notify) == ("r", "image x:1", True, ["h"])
    assert f"x@{PIN}" in pulled.script
    have = service.image_step("r", service.Image("x:1", pin=PIN), "sha256:i", (f"x@{PIN}",), ["h"])
    assert (have.role, have.name, have.changed, have.notify) == ("r", "image x:1", False, [])


def test_an_image_by_tag_is_pulled_when_absent_and_left_alone_when_present():
    pull = service.image_step("r", service.Image("x:1"), "", (), ["h"])
    assert whole(pull)[:4] == ("r", "image x:1", True, "pull") and pull.notify == ["h"]
    assert pull.script.endswith("docker pull -q x:1\n")
    assert service.image_step("r", service.Image("x:1"), "", (), [], quiet=True).script.endswith(
        "docker pull -q x:1 >/dev/null\n")
    assert whole(service.image_step("r", service.Image("x:1"), "sha256:0123456789abcdef0123", (), ["h"])) == (
        "r", "image x:1", False, "sha256:0123456789ab", "", None, [])
    # an archive whose id is not known (the failover proxy's): loaded when the image is absent
    assert whole(service.image_step("r", service.Image("x:1", "/tmp/x.tar"), "", (), ["h"])) == (
        "r", "image x:1", True, "load x.tar", LOAD, "/tmp/x.tar", ["h"])


def test_the_service_starts_restarts_for_another_configuration_or_is_left_alone():
    def step(state: str, have: str = "h1", restarting: bool = False):
        return whole(service.service_step("r", state, "2026-01-01T00:00:00.123Z", have, "h1", restarting, ["go"],
                                          title="svc", start="begin"))
    assert step("absent") == ("r", "svc", True, "begin", "", None, ["go"])
    assert step("exited") == ("r", "svc", True, "exited: start", "", None, ["go"])
    assert step("running", "h0") == ("r", "svc", True, "runs another config, certificate or image", "", None, ["go"])
    assert step("running", "h0", restarting=True) == ("r", "svc", False, "running since 2026-01-01T00:00:00Z", "",
                                                      None, [])
    assert step("running") == ("r", "svc", False, "running since 2026-01-01T00:00:00Z", "", None, [])
    assert service.service_step("r", "absent", "", "", "h", False, []).name == "service"       # (the default title)
