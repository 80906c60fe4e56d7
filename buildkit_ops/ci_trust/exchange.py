"""One exchange: a job's token and CSR for a certificate, or a refusal saying why; and the audit line of either
(the job, the trust and rule that chose it, never the token)."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from . import issuing, tokens
from .keys import Keys
from .rules import Trust


@dataclass(frozen=True)
class Intermediate:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Outcome:
    chain: bytes | None          # the certificate and the intermediate (PEM), or None: refused
    audit: dict[str, Any]        # what the audit line says


def trust_of(trusts: dict[str, Trust], token: str) -> Trust:
    """The trust whose issuer the token says (unverified: it only chooses which keys check it)."""
    try:
        iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise tokens.Refused("not a signed JWT") from None
    for t in trusts.values():
        if t.issuer == iss:
            return t
    raise tokens.Refused(f"no trust of this server takes tokens of issuer {iss!r}")


def exchange(trusts: dict[str, Trust], intermediates: dict[str, Intermediate], keys: Keys, spent: tokens.Spent,
             token: str, csr_pem: bytes, now: dt.datetime | None = None) -> Outcome:
    audit: dict[str, Any] = {"result": "refused"}
    try:
        trust = trust_of(trusts, token)
        audit["trust"] = trust.name
        csr = issuing.checked_csr(csr_pem)
        try:
            claims = tokens.verify(token, trust, keys.jwks(trust), spent)
        except tokens.UnknownKey:
            claims = tokens.verify(token, trust, keys.jwks(trust, again=True), spent)
        audit["job"] = issuing.job(claims)
        chosen = trust.rule_for(claims)
        if chosen is None:
            raise tokens.Refused(f"no rule of trust {trust.name} takes {issuing.job(claims)}")
        index, rule = chosen
        audit.update(rule=index, tenant=rule.tenant, role=rule.role)
        inter = intermediates[trust.name]
        chain = issuing.issue(csr, inter.cert, inter.key, trust, index, rule, claims, now)
        audit["result"] = "issued"
        audit["serial"] = format(x509.load_pem_x509_certificate(chain).serial_number, "X")
        return Outcome(chain, audit)
    except tokens.Refused as e:
        audit["why"] = str(e)
        return Outcome(None, audit)


def audit_line(outcome: Outcome) -> str:
    return "ci-exchange " + json.dumps(outcome.audit, sort_keys=True)
