"""Every key of the inventory: (kind, default, documentation). A default is written here and nowhere else; the
checker reads the kind, the model takes the checked values, the documented example is made from the text."""
from __future__ import annotations

from typing import Any

# The current BuildKit release, above the security floor (v0.34.2). Pinned by tag only: no public pin of its
# image digest could be found from here (public pins agree up to v0.34.0), and a digest that cannot be
# confirmed is not written as if it were. Pin yours: `image: moby/buildkit:v0.35.1@sha256:...`, the digest from
# `docker buildx imagetools inspect moby/buildkit:v0.35.1`.
DEFAULT_IMAGE = "moby/buildkit:v0.35.1"
DEFAULT_VERSION = "v0.35.1"
# key: (kind, default, documentation). The kind's check is values.kind(kind).

def ssh_keys(user_note: str) -> dict[str, tuple[str, Any, str]]:
    """How SSH reaches a machine: the same keys for build hosts and clients."""
    return {"ssh_user": ("user", "root", f"SSH login user; {user_note}"),
            "ssh_port": ("port", 22, "the port SSH connects to"),
            "ssh_key": ("path", None, "private key file for SSH (default: ssh-agent and ~/.ssh keys)"),
            "known_hosts": ("path", "~/.ssh/known_hosts", "known_hosts file holding the machine's host key; unknown "
                                                          "keys are refused"),
            "connect_timeout": ("int:1-300", 10, "seconds to wait for an SSH connection")}


HOST_KEYS: dict[str, tuple[str, Any, str]] = {
    "address": ("address", None, "IP address or DNS name that SSH connects to"),
    "names": ("address_list", [], "extra DNS names and IPs clients use to reach the host (server cert SANs)"),
    "client_address": ("address", None, "the name or address clients' builders connect to (default: "
                                        "private_address, else address)"),
    "vpn_address": ("vpn_ip", None, "its address inside the VPN (all.vars.vpn): chosen and written here by "
                                    "`provision` the first time; never change it"),
    "private_address": ("private_ip", None, "private mode: the host's address on a private network (a cloud's "
                                            "VPC); the gateway listens there only and the firewall opens the "
                                            "BuildKit port there only (default: none: every address, opened to "
                                            "the clients' addresses)"),
    **ssh_keys("a non-root user needs passwordless sudo"),
    "weight": ("int:1-1000", 100, "the host's share of the clients: twice the weight, about twice the clients"),
    "platforms": ("platform_list", None, "platforms it builds for, e.g. [linux/amd64] (default: what buildkitd "
                                         "reports)"),
    "emulate": ("emulated_platform_list", [], "platforms to emulate with qemu-user-static, e.g. [linux/arm64] "
                                              "(installed and registered by provision)"),
    "allow_outdated_buildkit": ("bool", False, "let the host serve more than one client with a BuildKit older than "
                                               "the security floor (v0.34.2): clients could then attack each "
                                               "other through the fixes it lacks"),
    "buildkit": ("buildkit", None, "BuildKit server settings (see below)"),
}
BUILDKIT_KEYS: dict[str, tuple[str, Any, str]] = {
    "image": ("image", DEFAULT_IMAGE, "image the server runs, pinned by tag or digest"),
    "image_archive": ("path", None,
                      "a `docker save` tarball loaded on the host when it lacks the image (air-gapped hosts)"),
    "version": ("version", DEFAULT_VERSION, "BuildKit version of the image (v0.13 to v0.35); buildkitd.toml holds "
                                            "the keys that version knows, the GC policy in its terms"),
    "port": ("port", 1234, "TCP port of the mutual-TLS listener (the gateway's; buildkitd itself listens on a "
                           "unix socket only)"),
    "gateway_image": ("image", "haproxy:3.2", "image of the gateway in front of buildkitd (HAProxy 3.0 or newer: "
                                              "a current LTS line), pinned by tag or digest"),
    "gateway_image_archive": ("path", None, "a `docker save` tarball of gateway_image, loaded on the host when it "
                                            "lacks the image (air-gapped hosts, the lab)"),
    "ci_port": ("port", 1235, "TCP port where CI jobs trade their OIDC token for a certificate (server-only TLS, "
                              "the gateway's; open only with `ci_trust`, to its `networks`)"),
    "gateway_idle_timeout": ("duration", 7200, "how long the gateway keeps a silent build stream open: longer than "
                                               "the longest `RUN` step that prints nothing; default 2h"),
    "max_parallelism": ("int:1-1024", 4, "steps run at once"),
    "privileges": ("enum:privileged,unprivileged-lab", "privileged",
                   "container privileges: `privileged` (as upstream runs buildkitd) or the narrower set that "
                   "works inside the lab's containers"),
    "data_dir": ("data_dir", "/opt/buildkit-ops",
                 "directory on the host holding compose file, config and certificates"),
    "debug_address": ("loopback_listen", None, "debug and metrics listener on a loopback ip:port (default: none)"),
    "step_network": ("enum:sandboxed,host", "sandboxed",
                     "network of build steps: `sandboxed` (their own namespace, fenced off from the host) or "
                     "`host` (the host's own network: builds reach its loopback services)"),
    "history_max_age": ("duration", 7 * 86400, "how long buildkitd keeps build records (status and builds read "
                                               "them); default 7d"),
    "history_max_entries": ("int:0-100000", 5000, "the most build records buildkitd keeps; 0 switches history off "
                                                  "(v0.33+; older versions drop each record soon after): `status` "
                                                  "and `builds` then see no builds"),
    "gc": ("gc", None, "garbage collection of the cache"),
    "registries": ("registries", {},
                   "per-registry settings: `ca` (file on this machine), `http`, `insecure`, `mirrors`"),
    "prune_schedule": ("prune_schedule", None, "a scheduled prune on the host (systemd timer): calendar, keep_storage, "
                                               "keep_duration, filters, all"),
}
PRUNE_KEYS = {"calendar": "calendar", "keep_storage": "size", "keep_duration": "duration", "filters": "filter_list",
              "all": "bool"}
GC_KEYS: dict[str, tuple[str, Any, str]] = {
    "enabled": ("bool", True, "run BuildKit's garbage collector"),
    "keep_storage": ("space", "10GB", "cache size the default rules prune down to (BuildKit uses it only "
                                      "without rules; from v0.17 it is the reserved space)"),
    "reserved": ("space", None, "v0.17+: space the GC never frees (reservedSpace)"),
    "max_used": ("space", None, "v0.17+: the most the cache may use (maxUsedSpace)"),
    "min_free": ("space", None, "v0.17+: free disk space the GC keeps (minFreeSpace)"),
    "policies": ("policies", None, "ordered GC rules: keep_duration, max_used, reserved, min_free, filters, all"),
}
POLICY_KEYS = {"all": "bool", "keep_duration": "duration", "max_used": "space", "reserved": "space",
               "min_free": "space", "filters": "filter_list"}
# `keep_bytes` (BuildKit v0.13's own word for what a rule prunes down to) is read as max_used.
POLICY_ALIASES = {"keep_bytes": "max_used"}
REGISTRY_KEYS = {"ca": "path", "http": "bool", "insecure": "bool", "mirrors": "registry_host_list"}
CLIENT_KEYS: dict[str, tuple[str, Any, str]] = {
    "address": ("client_source", None,
                "the IP address (or network) build hosts see this client's connections come from"),
    "connection": ("enum:local,ssh,none", "ssh", "`local`: the machine running invoke; `ssh`: reached over SSH; "
                                                "`none`: not reachable (a CI runner): its secrets and CI snippets "
                                                "are written to a folder instead"),
    "ssh_address": ("address", None, "address SSH connects to (default: address)"),
    **ssh_keys("the builder is set up as this user"),
    "builder": ("builder", "buildkit-ops", "name of the docker buildx builder created on the client"),
    "default_builder": ("bool", False, "make it the client's default builder (`docker buildx use`)"),
    "home": ("name", None, "a build host pinned as this client's home (default: rendezvous placement)"),
    "failover": ("enum:none,proxy", "none",
                 "`proxy`: a local HAProxy container on the client sends builds to the next host while the home "
                 "host does not answer (buildx alone does not fail over)"),
    "failover_port": ("port", 12340, "first loopback port of the failover proxy (one per build host)"),
    "placement": ("enum:home,spill,least-busy", "home",
                  "with `failover: proxy`, where a new build goes: `home` (its home host while it answers), `spill` "
                  "(its home host unless that host is full, then the next host with room) or `least-busy` (any of "
                  "its hosts with room, the one it has the fewest builds on); a host is full while it runs as many "
                  "builds as its max_parallelism. spill and least-busy need every host at this version"),
    "failover_image": ("image", "haproxy:3.0-alpine", "image of the failover proxy, pinned by tag or digest"),
    "failover_image_archive": ("path", None, "a `docker save` tarball of failover_image, loaded on the client "
                                             "when it lacks the image (air-gapped clients, the lab)"),
    "role": ("enum:developer,admin", "developer",
             "what the client may ask the gateway: `developer` builds (Solve, Status, Session, ListWorkers, Info); "
             "`admin` also reads and prunes the whole cache and the build history (DiskUsage, Prune, history)"),
    "limits": ("limits", None, "what the gateway lets the client run at once: `builds`, the most builds of the "
                               "client at once on a host (more wait their turn; 0: no limit), and `queue`, the "
                               "most that wait (more are refused), e.g. {builds: 2, queue: 10}"),
    "tenant": ("tenant_name", None, "the tenant whose own buildkitd (cache, history, GC budget) serves the client; "
                                    "its `role: admin` is then admin of that tenant only (default: the fleet's "
                                    "own buildkitd, shared by every client of no tenant)"),
    "allow_wide_network": ("bool", False, "let `address` be a network wider than /16 (IPv6 /32): a certificate that "
                                          "leaks then reaches the BuildKit port from anywhere in it"),
    "vpn_address": ("vpn_ip", None, "its address inside the VPN (all.vars.vpn): chosen and written here by "
                                    "`add-client`; never change it"),
}
LIMIT_KEYS: dict[str, tuple[str, Any, str]] = {
    "builds": ("int:0-1000", 0, "the most builds (Solve calls: a `buildx build` is one, a bake one per target) the "
                                "client runs on a host at once; more wait their turn at the gateway; 0: no limit"),
    "queue": ("int:0-10000", 0, "the most builds of the client that may wait their turn on a host; the next is "
                                "refused at once (RESOURCE_EXHAUSTED); 0: no limit. Needs `builds`"),
}
CI_TRUST_KEYS: dict[str, tuple[str, Any, str]] = {
    "issuer": ("str", None, "the OIDC issuer, exactly as its tokens' `iss` says it (https)"),
    "audience": ("str", None, "the `aud` its tokens must carry: the CI job asks for a token with it"),
    "rules": ("ci_rules", None, "which jobs get a certificate, and with what: a list of {claims: {NAME: PATTERN}, "
                                "tenant, role, limits}; the first rule whose every claim matches chooses"),
    "certificate_minutes": ("int:1-60", 60, "the certificates' lifetime, at most an hour"),
    "networks": ("client_source_list", [], "where its jobs connect from: the firewall lets them in to the BuildKit "
                                           "port (default: none, its jobs run on clients' addresses)"),
    "ca_file": ("path", None, "a CA bundle the issuer's HTTPS is checked against (a private issuer); default: the "
                              "system's"),
}
RULE_KEYS: dict[str, tuple[str, Any, str]] = {
    "claims": ("ci_claims", None, "claim -> pattern (`*`: any run of characters); every one must match"),
    "tenant": ("tenant_name", None, "the tenant whose buildkitd serves the job (default: the fleet's)"),
    "role": ("enum:developer,admin", "developer", "what the job may ask the gateway (as a client's `role`)"),
    "limits": ("limits", None, "what the gateway lets the job run at once (as a client's `limits`)"),
}
ALL_VAR_KEYS = {"pki_dir": ("path", ".pki",
                            "operator-side directory of the CA and certificates (CA key never leaves it)"),
                "cert_days": ("int", 825, "validity of server and client certificates, at most 825"),
                "cert_renew_days": ("int:1-824", 30, "reissue a certificate when it expires within this many days"),
                "ca_days": ("int:1-36500", 3650, "validity of the CA, in days (at most 100 years)"),
                "tenants": ("tenants", {}, "teams that share the build hosts but not a cache: each tenant gets a "
                                           "buildkitd of its own (own cache volume, history, GC budget, prune "
                                           "timer) on each of its `hosts:` (default: every build host), with "
                                           "`buildkit:` settings of its own (max_parallelism, step_network, gc, "
                                           "history_max_age, history_max_entries, prune_schedule; the host's "
                                           "values are the defaults); a client joins one with `tenant: NAME`, e.g. "
                                           "{red: {hosts: [build1], buildkit: {max_parallelism: 2}}}"),
                "ci_trust": ("ci_trust", {}, "CI jobs that trade their OIDC token for a client certificate of an hour "
                                             "at most (docs/ci.md): each trust an issuer, the audience its tokens "
                                             "carry, and rules mapping their claims to a tenant, role and limits, "
                                             "e.g. {github: {issuer: 'https://token.actions.githubusercontent.com', "
                                             "audience: buildkit-ops, rules: [{claims: {repository: org/app, ref: "
                                             "refs/heads/main}}]}}"),
                "vpn": ("vpn", None, "a VPN in front of the BuildKit port (docs/vpn.md): the port then opens only "
                                     "inside the tunnel, and clients build from whatever address they have; e.g. "
                                     "{kind: wireguard} (default: none)")}
VPN_KEYS: dict[str, tuple[str, Any, str]] = {
    "kind": ("enum:wireguard", "wireguard", "the tunnel: `wireguard` (the kernel's where the host has it, "
                                            "wireguard-go in user space where not)"),
    "subnet": ("vpn_subnet", "10.213.0.0/24", "the tunnel's addresses, one per build host and client: a private "
                                              "network that collides with no address of the inventory"),
    "port": ("int:1-65535", 51820, "the UDP port the build hosts take the tunnel on"),
    "allow_from": ("client_source_list", [], "networks that may reach the UDP port (default: anywhere, so that "
                                             "clients build from any address)"),
}
TENANT_KEYS: dict[str, tuple[str, Any, str]] = {
    "hosts": ("name_list", None, "the build hosts the tenant's buildkitd runs on (default: every build host)"),
    "buildkit": ("tenant_buildkit", None, "the tenant's own BuildKit settings; the host's are the defaults"),
    "placement": ("enum:home,spill,least-busy", None, "where its clients' new builds go, for those that do not say "
                                                      "(a client's `placement`); default: home"),
    "step_slot": ("int:0-255", None, "its build steps' subnet, 10.11.N.0/24: written here by `provision` the first "
                                     "time (from the name), then never moved by adding or removing another tenant; "
                                     "do not change it while the tenant runs"),
}
# What a tenant may set for its own buildkitd; the rest (image, version, port, data_dir, registries,
# privileges) is the host's: one image and one gateway per host.
TENANT_BUILDKIT_KEYS = ("max_parallelism", "step_network", "gc", "history_max_age", "history_max_entries",
                        "prune_schedule")

DEFAULT_POLICIES = [
    {"keep_duration": "48h", "filters": ["type==source.local", "type==exec.cachemount", "type==source.git.checkout"]},
    {"keep_duration": "1440h"},
    {"max_used": "5GB"},
    {"all": True, "max_used": "10GB"},
]
