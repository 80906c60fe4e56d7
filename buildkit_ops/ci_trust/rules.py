"""The inventory's trusts (`all.vars.ci_trust`), checked at load, and which rule a token's claims match.

A rule lists claims and the pattern each must match (`*` matches any run of characters; nothing else is special);
every listed claim must match, and the first rule that matches chooses the tenant, role and limits. A rule must
pin the job's identity: a claim naming the repository or project (or `sub`), by a pattern that does not start
with `*`, so that no rule can match every repository of the issuer (GitHub's issuer signs every public
repository's jobs)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The claims a rule may name: GitHub Actions' and GitLab CI's documented ones (a name not among them is a typo
# that would never match, or worse, match a claim no one checks).
GITHUB_CLAIMS = {"sub", "repository", "repository_id", "repository_owner", "repository_owner_id",
                 "repository_visibility", "ref", "ref_type", "ref_protected", "environment", "event_name",
                 "workflow", "workflow_ref", "job_workflow_ref", "job_workflow_sha", "actor", "actor_id",
                 "head_ref", "base_ref", "runner_environment", "enterprise", "enterprise_id"}
GITLAB_CLAIMS = {"sub", "namespace_id", "namespace_path", "project_id", "project_path", "user_id", "user_login",
                 "pipeline_source", "ref", "ref_type", "ref_path", "ref_protected", "environment",
                 "environment_protected", "deployment_tier", "runner_environment", "ci_config_ref_uri",
                 "project_visibility"}
CLAIMS = GITHUB_CLAIMS | GITLAB_CLAIMS
# the claims that name who the job is: a rule pins at least one of them
IDENTITY = {"sub", "repository", "repository_id", "repository_owner", "repository_owner_id", "project_path",
            "project_id", "namespace_path", "namespace_id"}
BOOLEAN = {"ref_protected", "environment_protected"}   # both CIs send them as the strings "true" and "false"
ROLES = ("developer", "admin")
MAX_MINUTES = 60
PATTERN = re.compile(r"[!-~]{1,256}")   # printable ASCII, no space: what a repository, ref or id can be


class BadTrust(ValueError):
    """A trust or rule that cannot be used: what is wrong (its key) and how to fix it."""
    def __init__(self, key: str, problem: str, fix: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem, self.fix = key, problem, fix


@dataclass(frozen=True)
class Rule:
    claims: dict[str, str]             # claim -> pattern
    tenant: str | None = None
    role: str = "developer"
    builds: int = 0                    # its jobs' limits at the gateway (a client's `limits`; 0: none)
    queue: int = 0

    def matches(self, token_claims: dict[str, Any]) -> bool:
        return all(name in token_claims and matches(pattern, claim_text(token_claims[name]))
                   for name, pattern in self.claims.items())


@dataclass(frozen=True)
class Trust:
    name: str
    issuer: str                        # exactly as the tokens' `iss` says it
    audience: str                      # what their `aud` must be
    rules: tuple[Rule, ...]
    minutes: int = MAX_MINUTES         # the certificates' lifetime
    networks: tuple[str, ...] = ()     # where its jobs connect from (the firewall lets them in)
    ca_file: str | None = None         # a CA bundle for the issuer's HTTPS (a private issuer); None: the system's

    def rule_for(self, token_claims: dict[str, Any]) -> tuple[int, Rule] | None:
        """The first rule the claims match, with its index; None: refused."""
        for i, r in enumerate(self.rules):
            if r.matches(token_claims):
                return i, r
        return None


def claim_text(value: Any) -> str:
    """A claim's value as a pattern is matched against (booleans as both CIs write them: true, false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(pattern: str, text: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), text, re.DOTALL) is not None


def issuer_url(value: Any, key: str) -> str:
    """An OIDC issuer as its tokens name it: https, a host, an optional port and a plain path; no user, query,
    fragment, escape, dot segment or doubled slash (each a way to make one issuer look like another)."""
    fix = "write the issuer exactly as its tokens' `iss` says it, e.g. https://token.actions.githubusercontent.com"
    if not isinstance(value, str) or not re.fullmatch(r"[!-~]{1,512}", value):
        raise BadTrust(key, f"{value!r} is not an issuer URL", fix)
    parts = urlsplit(value)
    if parts.scheme != "https":
        raise BadTrust(key, f"{value} is not https: its keys would travel unauthenticated", fix)
    if parts.username is not None or "@" in parts.netloc or parts.query or parts.fragment or "?" in value \
            or "#" in value:
        raise BadTrust(key, f"{value} has a user, query or fragment: not an issuer", fix)
    if "%" in value or "\\" in value or "//" in parts.path or any(s in (".", "..") for s in parts.path.split("/")):
        raise BadTrust(key, f"{value} has an escape, a backslash or a dot segment in its path", fix)
    host = parts.netloc.rsplit(":", 1)[0] if re.search(r":\d*$", parts.netloc) else parts.netloc
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", host) or ".." in host:
        raise BadTrust(key, f"{value} has no plain host name", fix)
    try:
        _ = parts.port   # (urlsplit checks it when asked)
    except ValueError:
        raise BadTrust(key, f"{value} has a port that is not a number", fix) from None
    if value.endswith("/"):
        raise BadTrust(key, f"{value} ends with /: tokens name their issuer without it", fix)
    return value


def rule_claims(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise BadTrust(key, "a rule needs the claims it matches", "add e.g. `claims: {repository: org/app, ref: "
                                                                  "refs/heads/main}`")
    out = {}
    for name, pattern in value.items():
        if name not in CLAIMS:
            raise BadTrust(f"{key}.{name}", f"{name!r} is not a claim GitHub Actions or GitLab CI sends",
                           "use one of: " + ", ".join(sorted(CLAIMS)))
        if name in BOOLEAN and isinstance(pattern, bool):
            pattern = claim_text(pattern)
        if not isinstance(pattern, str) or not PATTERN.fullmatch(pattern):
            raise BadTrust(f"{key}.{name}", f"{pattern!r} is not a claim pattern", "write the value (printable, "
                           "no spaces), with `*` for any run of characters")
        if name in BOOLEAN and pattern not in ("true", "false"):
            raise BadTrust(f"{key}.{name}", f"{pattern!r} is not true or false", "write true or false")
        out[name] = pattern
    if not any(pins(n, p) for n, p in out.items()):
        raise BadTrust(key, "the rule would match jobs of repositories or projects nobody named: it pins none of "
                            + ", ".join(sorted(IDENTITY)) + " (a pattern pins only with its owner written out, "
                            "as in org/app or org/*)",
                       "name the repository or project, e.g. `repository: org/app` or `project_path: group/app`")
    return out


def pins(name: str, pattern: str) -> bool:
    """Does this claim pattern name whose jobs they are? An identity claim written out, or a pattern whose part
    before its first `*` holds the owner (org/..., and for `sub` repo:org/... or project_path:group/...)."""
    if name not in IDENTITY:
        return False
    if "*" not in pattern:
        return True
    literal = pattern.split("*", 1)[0]
    if name in ("repository", "project_path", "namespace_path"):
        return "/" in literal and not literal.startswith("/")
    if name == "sub":
        return re.match(r"(repo|project_path):[^/:*]+/", literal) is not None
    return False   # (ids and owners are written out whole)
