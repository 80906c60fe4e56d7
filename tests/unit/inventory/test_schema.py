"""The schema is the one place a key is declared: its kind, its default and its documentation. The typed model
has exactly the schema's keys and no default of its own; the shipped inventory.yml documents every key."""
from __future__ import annotations

import dataclasses

from conftest import ROOT

from buildkit_ops.inventory import GC, BuildHost, BuildKit, Client, schema


def test_the_model_has_the_schemas_keys_and_no_default_of_its_own():
    for table, cls, own in ((schema.HOST_KEYS, BuildHost, {"name"}), (schema.BUILDKIT_KEYS, BuildKit, set()),
                            (schema.CLIENT_KEYS, Client, {"name"}), (schema.GC_KEYS, GC, set())):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(fields) == set(table) | own, cls.__name__
        with_defaults = [f.name for f in fields.values()
                         if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
        assert with_defaults == [], cls.__name__


def test_every_key_has_a_sentence_of_documentation():
    tables = (schema.HOST_KEYS, schema.BUILDKIT_KEYS, schema.GC_KEYS, schema.CLIENT_KEYS, schema.ALL_VAR_KEYS)
    assert all(len(doc.split()) >= 3 for table in tables for _kind, _default, doc in table.values())


def test_the_shipped_inventory_documents_every_key():
    text = (ROOT / "inventory.yml").read_text()
    comments = "\n".join(line for line in text.splitlines() if line.strip().startswith("#"))
    for table in (schema.HOST_KEYS, schema.BUILDKIT_KEYS, schema.GC_KEYS, schema.CLIENT_KEYS, schema.ALL_VAR_KEYS,
                  schema.PRUNE_KEYS, schema.POLICY_KEYS, schema.REGISTRY_KEYS):
        for key in table:
            assert key in comments, f"inventory.yml does not document `{key}`"
