"""Fixtures of the unit tests."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from unit_helpers import GOOD

from buildkit_ops.inventory import BuildHost, loader
from buildkit_ops.pki import certs as pki


@pytest.fixture
def host(tmp_path) -> BuildHost:
    """A valid host whose values a test may replace by hostile ones: validation bypassed."""
    inv = loader.parse(yaml.safe_load(GOOD), str(tmp_path / "inv.yml"), tmp_path)
    return copy.deepcopy(inv.hosts["build1"])


@pytest.fixture
def inv_path(tmp_path) -> Path:
    """The shipped inventory in a scratch folder, with its own PKI and an existing ssh key."""
    text = (ROOT / "inventory.yml").read_text()
    (tmp_path / "id").write_text("key")
    data = yaml.safe_load(text)
    data["all"]["vars"].update(ssh_key=str(tmp_path / "id"), pki_dir=str(tmp_path / "pki"))
    data["all"]["vars"]["buildkit"].pop("image_archive")
    data["all"]["vars"]["buildkit"].pop("registries")
    data["all"]["children"]["clients"]["hosts"]["laptop"].pop("failover_image_archive")
    p = tmp_path / "inventory.yml"
    p.write_text(text.split("all:")[0] + yaml.safe_dump(data, sort_keys=False))
    pki.ensure_ca(tmp_path / "pki", 3650)
    return p
