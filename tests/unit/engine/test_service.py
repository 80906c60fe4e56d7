"""The service ladder (buildkitd's daemons, the gateway, the failover proxy): the image from its archive, its pin
or its tag, then the service started, restarted for another configuration, or left alone."""
from __future__ import annotations

from buildkit_ops.engine import service

PIN = "sha256:" + "a" * 64


def test_the_image_comes_from_the_archive_then_the_pin_then_the_tag():
    archive = service.Image("x:1", "/tmp/x.tar", "sha256:new")
    assert service.image_step("r", archive, "sha256:old", (), ["h"]).upload == "/tmp/x.tar"
    assert not service.image_step("r", archive, "sha256:new", (), ["h"]).changed
    pinned = service.image_step("r", service.Image("x:1", pin=PIN), "sha256:old", (), ["h"])
    assert pinned.changed and PIN in pinned.script and pinned.notify == ["h"]
    assert not service.image_step("r", service.Image("x:1", pin=PIN), "sha256:i", (f"x@{PIN}",), ["h"]).changed
    pull = service.image_step("r", service.Image("x:1"), "", (), ["h"])
    assert pull.changed and "docker pull -q x:1" in pull.script
    assert not service.image_step("r", service.Image("x:1"), "sha256:i", (), ["h"]).changed
    # (an archive whose id is not known, the failover proxy's: loaded when the image is absent)
    assert service.image_step("r", service.Image("x:1", "/tmp/x.tar"), "", (), []).upload == "/tmp/x.tar"


def test_the_service_starts_restarts_for_another_configuration_or_is_left_alone():
    def step(state: str, have: str = "h1", restarting: bool = False):
        s = service.service_step("r", state, "2026-01-01T00:00:00.123Z", have, "h1", restarting, ["go"])
        return s.changed, s.detail, s.notify
    assert step("absent") == (True, "start", ["go"])
    assert step("exited") == (True, "exited: start", ["go"])
    assert step("running", "h0") == (True, "runs another config, certificate or image", ["go"])
    assert step("running", "h0", restarting=True)[0] is False     # (restarted anyway by an earlier step)
    assert step("running") == (False, "running since 2026-01-01T00:00:00Z", [])
