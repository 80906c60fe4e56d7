"""CI without long-lived secrets: a CI job trades its OIDC token for a client certificate of an hour at most.

rules.py    the inventory's trusts (`ci_trust:`): each an OIDC issuer, the audience its tokens must carry, and the
            rules that map a token's claims to a tenant, a role and limits (no rule matched: refused);
tokens.py   a token checked against its issuer's keys (signature, algorithm, iss, aud, exp, nbf, iat, replay);
issuing.py  the certificate: the job's CSR (its key never leaves the job) signed by the trust's intermediate CA;
keys.py     the issuer's signing keys from its discovery document and JWKS (kept, fetched again for a new kid);
exchange.py one exchange (token and CSR for a certificate, or why not) and its audit line;
server.py   the issuer's HTTP service on a root-only unix socket (the ci_issuer role runs it on each build host).

docs/ci.md tells how it works and its threat model. The package imports nothing else of buildkit_ops (only
PyJWT and cryptography): the issuer on a build host runs these same files."""
