"""A CI job's token is exchanged only when every check passes: signature by the issuer's key for its algorithm,
iss, aud, exp, nbf, iat, once; and a rule of the trust names the job (real RS256 and ES256 tokens, made here)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from oidc_helpers import EC_KEY, JWKS, RSA_KEY, TRUST, claims, token

from buildkit_ops.ci_trust import tokens


def hs256_with_public_key():
    """The classic confusion attack, made by hand (PyJWT refuses to make it): HMAC keyed by the public key's PEM."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    secret = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    signing = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}).encode()) + "." + \
        b64(json.dumps(claims()).encode())
    return signing + "." + b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


def exchange(tok, trust=TRUST):
    got = tokens.verify(tok, trust, JWKS, tokens.Spent())
    return trust.rule_for(got)


def test_a_token_of_the_named_repository_and_ref_passes_signed_rs256_or_es256():
    assert exchange(token())[0] == 0
    assert exchange(token(EC_KEY, "ec1", "ES256"))[0] == 0
    assert exchange(token(ref="refs/tags/v1.2"))[0] == 1


@pytest.mark.parametrize("over", [{"repository": "org/other", "sub": "repo:org/other:ref:refs/heads/main"},
                                  {"ref": "refs/heads/feature"},
                                  {"ref": "refs/tags/v1.2", "ref_protected": "false"}],
                         ids=["another repository", "another ref", "an unprotected tag where protected is asked"])
def test_a_token_no_rule_names_gets_nothing(over):
    assert exchange(token(**over)) is None


@pytest.mark.parametrize("tok,says", [
    (lambda: token(aud="someone-else"), "aud is not 'buildkit-ops'"),
    (lambda: token(iss="https://gitlab.com"), "iss is not https://token.actions.githubusercontent.com"),
    (lambda: token(iat=int(time.time()) - 900, nbf=int(time.time()) - 900, exp=int(time.time()) - 300),
     "expired"),
    (lambda: token(nbf=int(time.time()) + 600), "not valid yet"),
    (lambda: token(iat=int(time.time()) + 600), "not valid yet"),
    (lambda: jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa1"}), "alg 'none'"),
    (lambda: hs256_with_public_key(), "alg 'HS256'"),
    (lambda: token(EC_KEY, "rsa1", "ES256"), "ES256, which its key 'rsa1' (RSA) is not for"),
    (lambda: token(ec.generate_private_key(ec.SECP256R1()), "ec1", "ES256"), "signature does not verify"),
    (lambda: token(jti=None), "cannot be used"),
    (lambda: "not.a.token", "not a signed JWT"),
], ids=["wrong aud", "wrong iss", "expired", "nbf in the future", "iat in the future", "alg none",
        "HS256 signed with the issuer's public key", "an algorithm its key is not for", "another key, same kid",
        "no jti", "garbage"])
def test_a_token_failing_a_check_is_refused_saying_which(tok, says):
    with pytest.raises(tokens.Refused, match=says.replace("(", r"\(").replace(")", r"\)")):
        exchange(tok())


def test_a_kid_the_jwks_does_not_have_asks_for_the_keys_again():
    with pytest.raises(tokens.UnknownKey, match="kid 'rsa9'"):
        exchange(token(kid="rsa9"))


def test_the_same_token_twice_is_refused_the_second_time():
    spent, tok = tokens.Spent(), token()
    assert tokens.verify(tok, TRUST, JWKS, spent)
    with pytest.raises(tokens.Refused, match="exchanged already"):
        tokens.verify(tok, TRUST, JWKS, spent)
    assert tokens.verify(token(), TRUST, JWKS, spent)   # (the control: another token of the same job passes)
