"""The trusts' values are checked at load: an issuer is https and plainly itself, a rule names known claims and
pins whose jobs it takes (no rule can match every repository), booleans are the strings both CIs send."""
from __future__ import annotations

import pytest

from buildkit_ops.ci_trust import rules


@pytest.mark.parametrize("issuer", ["https://token.actions.githubusercontent.com", "https://gitlab.com",
                                    "https://gitlab.example.org:8443/gitlab", "https://10.77.0.30:8443"])
def test_an_issuer_as_its_tokens_say_it_passes(issuer):
    assert rules.issuer_url(issuer, "iss") == issuer


@pytest.mark.parametrize("issuer,says", [
    ("http://token.actions.githubusercontent.com", "not https"),
    ("https://token.actions.githubusercontent.com@evil.example", "user, query or fragment"),
    ("https://evil.example#token.actions.githubusercontent.com", "user, query or fragment"),
    ("https://evil.example?x=token.actions.githubusercontent.com", "user, query or fragment"),
    ("https://gitlab.com/../evil", "dot segment"),
    ("https://gitlab.com//evil", "dot segment"),
    ("https://gitlab.com/%2e%2e/evil", "escape"),
    ("https://gitlab.com\\@evil.example", "user"),
    ("https://gitlab.com/", "ends with /"),
    ("https://GitLab.com", "no plain host name"),
    ("https://gitlab.com:x", "no plain host name"),
    ("https://gitlab.com/a b", "not an issuer URL"),
    ("https://gitlab.com\n", "not an issuer URL"),
], ids=lambda v: v if len(v) < 30 else None)
def test_an_issuer_that_could_pass_for_another_is_refused(issuer, says):
    with pytest.raises(rules.BadTrust, match=says):
        rules.issuer_url(issuer, "all.vars.ci_trust.github.issuer")


@pytest.mark.parametrize("claims", [
    {"repository": "org/app"}, {"repository": "org/*", "ref": "refs/heads/main"}, {"project_path": "group/app"},
    {"sub": "repo:org/app:ref:refs/heads/main"}, {"sub": "repo:org/*"}, {"repository_id": "123", "ref": "*"},
    {"repository": "org/app", "ref_protected": True}])
def test_a_rule_that_pins_its_jobs_passes(claims):
    assert rules.rule_claims(claims, "rules[0].claims")


@pytest.mark.parametrize("claims,says", [
    ({}, "needs the claims"),
    ({"ref": "refs/heads/main"}, "pins none"),
    ({"repository": "*"}, "pins none"),
    ({"repository": "*/app"}, "pins none"),
    ({"repository": "o*"}, "pins none"),
    ({"sub": "*:ref:refs/heads/main"}, "pins none"),
    ({"repository_id": "12*"}, "pins none"),
    ({"repository": "org/app", "repositry": "org/app"}, "not a claim"),
    ({"repository": "org/app", "ref": "refs/heads/main\nrepository: *"}, "not a claim pattern"),
    ({"repository": "org/app", "ref": ""}, "not a claim pattern"),
    ({"repository": "org/app", "ref_protected": "yes"}, "not true or false"),
], ids=["no claims", "no identity", "every repository", "any owner", "an owner prefix", "sub of anyone",
        "an id prefix", "unknown claim name", "a newline", "empty", "a boolean that is not one"])
def test_a_rule_that_would_match_too_much_or_nothing_is_refused(claims, says):
    with pytest.raises(rules.BadTrust, match=says):
        rules.rule_claims(claims, "all.vars.ci_trust.github.rules[0].claims")


def test_patterns_match_whole_values_and_star_is_the_only_wildcard():
    assert rules.matches("refs/tags/v*", "refs/tags/v1.2") and not rules.matches("refs/tags/v*", "xrefs/tags/v1")
    assert rules.matches("org/app", "org/app") and not rules.matches("org/app", "org/app2")
    assert not rules.matches("org/a.p", "org/axp") and not rules.matches("org/[a]pp", "org/app")
    assert rules.claim_text(True) == "true" and rules.claim_text(123) == "123"
