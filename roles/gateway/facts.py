"""What the gateway role knows of a host, parsed once from its facts.sh: the pinned image, the container, who
listens on the BuildKit port, the CRL and PKI generation the host holds, and the certificate it presents."""
from __future__ import annotations

import base64
from dataclasses import dataclass

from buildkit_ops.engine import image_pins
from buildkit_ops.pki import crl as crls
from buildkit_ops.pki import generation


@dataclass
class GatewayFacts:
    image_id: str = ""                 # of the pinned image on the host, empty when absent
    state: str = "absent"              # the container's: running, exited, ... or absent
    started: str = ""
    compose_hash: str = ""             # the label provision set when it (re)created the container
    listener: str = ""                 # `ss` line of whoever listens on the BuildKit port
    old_key: bool = False              # data_dir/tls/server.key, buildkitd's before the gateway held the key
    crl_number: int | None = None      # of the CRL the gateway enforces now (None: none there)
    crl_signed: str | None = None
    crl_issuer: str | None = None      # the key id of the CA that signed it (crl.own_key_ids: this PKI's or not)
    generation: int | None = None      # of the PKI state that last provisioned the host (pki/generation.py)
    image_digests: tuple[str, ...] = ()   # the image's repo digests (repo@sha256:...): images.lock's pins
    server_cert: bytes = b""           # the certificate it presents (PEM), empty when none
    admin: bool = False                # its runtime API's socket is there (a gateway of this version runs)
    socat: bool = False                # the host has socat, which update.sh talks to the runtime API with
    replies: tuple[str, ...] = ()      # the refusal replies (*.http) in its folder
    addresses: tuple[str, ...] = ()    # the host's own IP addresses


def parse(sections: dict[str, str]) -> GatewayFacts:
    c = (sections.get("gw_container") or "").split()
    crl = (sections.get("gw_crl") or "").strip().encode()
    image_id, digests = image_pins.split_fact(sections.get("gw_image", ""))
    return GatewayFacts(image_id, c[0] if c else "absent", c[1] if len(c) > 1 else "",
                        c[2] if len(c) > 2 else "", sections.get("gw_port", ""),
                        _present(sections, "gw_old_key"),
                        crl_number=crls.number_of(crl) if crl else None,
                        crl_signed=crls.made_at(crl) if crl else None,
                        crl_issuer=crls.issuer_key_id(crl) if crl else None,
                        generation=generation.parse(sections.get("gw_generation") or ""), image_digests=digests,
                        server_cert=base64.b64decode(sections.get("gw_server_cert") or ""),
                        admin=_present(sections, "gw_admin"), socat=_present(sections, "gw_socat"),
                        replies=tuple(sorted((sections.get("gw_replies") or "").split())),
                        addresses=tuple((sections.get("gw_addresses") or "").split()))


def _present(sections: dict[str, str], name: str) -> bool:
    return (sections.get(name) or "").strip() == "present"


