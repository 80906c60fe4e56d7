"""Client machines: the buildx builder set up on a developer's machine, the secrets and snippets of a CI runner,
and the operator's records of clients (revocations, list-clients)."""
