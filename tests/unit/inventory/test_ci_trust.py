"""all.vars.ci_trust in the inventory: a trust loads as its issuer, audience and rules; every wrong value is
refused at load with the key's path and the fix (the battery's hostile cases for trusts)."""
from __future__ import annotations

from pathlib import Path

import pytest
from unit_helpers import load_text, mutate, refusal
from unit_helpers import top_values as top

from buildkit_ops.inventory.model import InventoryError

GITHUB = "https://token.actions.githubusercontent.com"


def trust(**over):
    t = {"issuer": GITHUB, "audience": "buildkit-ops",
         "rules": [{"claims": {"repository": "org/app", "ref": "refs/heads/main"}, "tenant": "red",
                    "limits": {"builds": 2}}]}
    return {"github": {**t, **over}}


def with_trust(**over):
    return lambda d: (top(tenants={"red": {}})(d), top(ci_trust=trust(**over))(d))


def test_a_trust_loads_with_its_rules(tmp_path):
    inv = load_text(tmp_path, mutate(with_trust(networks=["10.0.0.0/24"], certificate_minutes=15)))
    t = inv.ci_trust["github"]
    assert (t.issuer, t.audience, t.minutes, t.networks) == (GITHUB, "buildkit-ops", 15, ("10.0.0.0/24",))
    [r] = t.rules
    assert (r.claims, r.tenant, r.role, r.builds) == ({"repository": "org/app", "ref": "refs/heads/main"},
                                                             "red", "developer", 2)


def test_a_private_issuers_ca_file_is_relative_to_the_inventory_and_must_be_there_before_any_host(tmp_path):
    inv = load_text(tmp_path, mutate(with_trust(ca_file="issuer-ca.pem")))
    assert inv.ci_trust["github"].ca_file == str(inv.file.parent / "issuer-ca.pem")
    for h in inv.hosts.values():                    # (the hosts' own files are there)
        Path(h.ssh_key).write_text("(a key)\n")
    with pytest.raises(InventoryError) as e:
        inv.check_files(list(inv.hosts.values()))
    assert "all.vars.ci_trust.github.ca_file" in str(e.value) and "does not exist" in str(e.value)
    (inv.file.parent / "issuer-ca.pem").write_text("(a CA)\n")
    inv.check_files(list(inv.hosts.values()))       # (the positive control)


BAD = [
    ("a rule that matches every repository", with_trust(rules=[{"claims": {"repository": "*"}}]),
     "all.vars.ci_trust.github.rules[0].claims: the rule would match jobs of repositories or projects nobody named"),
    ("a rule with no identity", with_trust(rules=[{"claims": {"ref": "refs/heads/main"}}]),
     "all.vars.ci_trust.github.rules[0].claims: the rule would match jobs of repositories or projects nobody named"),
    ("an unknown claim name", with_trust(rules=[{"claims": {"repository": "org/app", "branch": "main"}}]),
     "all.vars.ci_trust.github.rules[0].claims.branch: 'branch' is not a claim GitHub Actions or GitLab CI sends"),
    ("a plain-http issuer", with_trust(issuer="http://token.actions.githubusercontent.com"),
     "all.vars.ci_trust.github.issuer: http://token.actions.githubusercontent.com is not https"),
    ("an issuer with a path trick", with_trust(issuer="https://gitlab.com/../evil.example"),
     "all.vars.ci_trust.github.issuer: https://gitlab.com/../evil.example has an escape, a backslash or a dot "
     "segment in its path"),
    ("an issuer with a user trick", with_trust(issuer="https://gitlab.com@evil.example"),
     "all.vars.ci_trust.github.issuer: https://gitlab.com@evil.example has a user, query or fragment"),
    ("no audience", with_trust(audience=None), "all.vars.ci_trust.github.audience: is missing"),
    ("an audience pattern", with_trust(audience="*"), "all.vars.ci_trust.github.audience: '*' is not an audience"),
    ("a certificate of more than an hour", with_trust(certificate_minutes=90),
     "all.vars.ci_trust.github.certificate_minutes: must be a whole number from 1 to 60, got 90"),
    ("no rules", with_trust(rules=[]), "all.vars.ci_trust.github.rules: must be a list of at least one rule"),
    ("a rule's tenant that is none", with_trust(rules=[{"claims": {"repository": "org/app"}, "tenant": "blue"}]),
     "all.vars.ci_trust.github.rules[0].tenant: 'blue' is not a tenant"),
    ("a rule's unknown key", with_trust(rules=[{"claims": {"repository": "org/app"}, "ttl": 5}]),
     "all.vars.ci_trust.github.rules[0]"),
    ("a trust named with a newline", lambda d: top(ci_trust={"git\nhub": trust()["github"]})(d),
     "all.vars.ci_trust.git\\nhub"),
    ("a network of everyone", with_trust(networks=["0.0.0.0/0"]),
     "all.vars.ci_trust.github.networks[0]: '0.0.0.0/0' is every address"),
]


@pytest.mark.parametrize("what,edit,message", BAD, ids=[b[0] for b in BAD])
def test_a_wrong_trust_is_refused_at_load_saying_where_and_how_to_fix_it(tmp_path, what, edit, message):
    said = refusal(tmp_path, edit)
    assert said.startswith(f"inv.yml: {message}"), said
    assert "\n  fix: " in said
