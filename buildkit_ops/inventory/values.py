"""The value types of the inventory: one strict grammar each.

Every value that reaches a host (a config file, a unit, a shell command, a
firewall rule) has one of these types and is checked at load with
`re.fullmatch` (never `re.match` with `$`, which lets a trailing newline
through). A check returns the normalised value or raises BadValue with what is
wrong and how to fix it; the loader adds the file and key path.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable


class BadValue(ValueError):
    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def _str(v: Any, what: str, fix: str) -> str:
    if not isinstance(v, str) or not v:
        raise BadValue(f"must be {what}, got {v!r}", fix)
    return v


def _fullmatch(pattern: str, v: Any, what: str, fix: str) -> str:
    s = _str(v, what, fix)
    if not re.fullmatch(pattern, s):
        raise BadValue(f"{s!r} is not {what}", fix)
    return s


# ------------------------------------------------------------------ names

NAME = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS = rf"(?=.{{1,253}}\Z){DNS_LABEL}(?:\.{DNS_LABEL})*"


def machine_name(v: Any) -> str:
    return _fullmatch(NAME, v, "a valid name (lower-case letters, digits and dashes)",
                      "use lower-case letters, digits and dashes, starting and ending with a letter or digit")


def tenant_name(v: Any) -> str:
    """A tenant's name becomes part of a container's, a volume's, a socket folder's and a systemd unit's name."""
    name = _fullmatch(r"[a-z](?:[a-z0-9-]{0,18}[a-z0-9])?", v, "a tenant name",
                      "use 1 to 20 lower-case letters, digits and dashes, starting with a letter, e.g. red")
    if name == "default":
        raise BadValue("'default' is the name of the fleet's own buildkitd (clients of no tenant)",
                       "give the tenant another name")
    return name


def user_name(v: Any) -> str:
    return _fullmatch(r"[a-z_][a-z0-9_-]{0,31}", v, "a user name", "write a login name such as root or deploy")


def builder_name(v: Any) -> str:
    # buildx's own rule (store.ValidateName), lower case since buildx lowercases names anyway
    return _fullmatch(r"[a-z][a-z0-9._-]{0,62}", v, "a buildx builder name",
                      "start with a letter; then letters, digits, '.', '_' or '-' (e.g. buildkit-ops)")


# ------------------------------------------------------------------ addresses

def _ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if "%" in s:  # Python accepts any zone id ("fe80::1%eth0;cmd"); an address here never has one
        raise ValueError("zone id")
    return ipaddress.ip_address(s)


def is_ip(v: Any) -> bool:
    try:
        _ip(str(v))
        return True
    except ValueError:
        return False


def host_address(v: Any) -> str:
    """An IP address (no zone id) or a DNS name: what SSH or a client connects to."""
    s = _str(v, "an IP address or DNS name", "write an address such as 10.0.0.5 or build1.example.com")
    if is_ip(s):
        return str(_ip(s))
    if re.fullmatch(DNS, s) and not re.fullmatch(r"[0-9.]+", s):
        return s
    raise BadValue(f"{s!r} is not an IP address or DNS name", "write an address such as 10.0.0.5 or build1.example.com")


def client_source(v: Any) -> str:
    """The source address (or network) a client's connections come from, as the firewall matches it."""
    fix = "write the address the build hosts see, such as 10.0.0.21, or a network such as 10.0.0.0/24"
    s = _str(v if not isinstance(v, bool) else None, "an IP address or network", fix)
    try:
        if "%" in s:
            raise ValueError("zone id")
        net = ipaddress.ip_network(s, strict=False)
    except ValueError:
        raise BadValue(f"{s!r} is not an IP address or network (no names, no zone ids): the firewall opens the "
                       f"port by source address", fix) from None
    if net.prefixlen == 0:
        raise BadValue(f"{s!r} is every address: the port would be open to the whole internet",
                       "name the client's own address or its network, such as 10.0.0.0/24")
    if net.num_addresses == 1 and net.network_address.is_unspecified:
        raise BadValue(f"{s!r} is the unspecified address, not a client", fix)
    return str(net.network_address) if net.num_addresses == 1 else str(net)


# The widest network a client may be without saying so (`allow_wide_network: true`): a certificate that leaks
# reaches the BuildKit port from anywhere in it.
WIDEST = {4: 16, 6: 32}


def too_wide(address: str) -> bool:
    """A client address (as client_source returns it) wider than WIDEST."""
    net = ipaddress.ip_network(address, strict=False)
    return net.prefixlen < WIDEST[net.version]


# Where private mode may listen: RFC 1918, the shared address space (RFC 6598) and unique local IPv6 addresses.
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                            "100.64.0.0/10", "fc00::/7"))


def private_ip(v: Any) -> str:
    """A host's address on a private network (a cloud's VPC), where private mode opens the BuildKit port."""
    fix = "write the host's address on its private network, such as 10.0.0.5, or leave the key out"
    s = _str(v, "a private IP address", fix)
    if not is_ip(s):
        raise BadValue(f"{s!r} is not an IP address: the gateway listens on one address of the host", fix)
    ip = _ip(s)
    if not any(ip in n for n in PRIVATE_NETWORKS if n.version == ip.version):
        raise BadValue(f"{s!r} is a public address: private mode opens the BuildKit port on a private network only "
                       f"(10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7)",
                       "use the host's address on its private network, or leave private_address out (the port then "
                       "listens on every address, opened to the clients' addresses only)")
    return str(ip)


def vpn_subnet(v: Any) -> str:
    """The tunnel's network: a /16 to /28 (IPv6 /64 to /124) of a private range, written as its network."""
    fix = "write a private network such as 10.213.0.0/24"
    s = _str(v, "a private network", fix)
    try:
        net = ipaddress.ip_network(s, strict=True)
    except ValueError:
        raise BadValue(f"{s!r} is not a network in CIDR form (the network's own address, e.g. 10.213.0.0/24)",
                       fix) from None
    if not any(net.subnet_of(n) for n in PRIVATE_NETWORKS if n.version == net.version):  # type: ignore[arg-type]
        raise BadValue(f"{s!r} is not in a private range: the tunnel's addresses would be someone else's on the "
                       f"internet", fix)
    lo, hi = (16, 28) if net.version == 4 else (64, 124)
    if not lo <= net.prefixlen <= hi:
        raise BadValue(f"{s!r} is a /{net.prefixlen}: the tunnel's network is a /{lo} to a /{hi}", fix)
    return str(net)


def vpn_ip(v: Any) -> str:
    """A machine's one address inside the tunnel (WireGuard's allowed-ips for it is this address alone)."""
    fix = "leave the key out (buildkit-ops chooses one and writes it here), or write one address such as 10.213.0.7"
    s = _str(v, "an IP address", fix)
    if "/" in s:
        try:
            wide = ipaddress.ip_network(s, strict=False).num_addresses > 1
        except ValueError:
            wide = False
        if wide:
            raise BadValue(f"{s!r} is a network, wider than the machine's own tunnel address: its peer would be "
                           f"allowed to send as any address in it (WireGuard's allowed-ips)", fix)
        s = s.split("/")[0]
    if not is_ip(s):
        raise BadValue(f"{s!r} is not an IP address", fix)
    return str(_ip(s))


def registry_host(v: Any) -> str:
    """host[:port] of a registry or mirror: a DNS name, an IPv4 address or a bracketed IPv6 address."""
    fix = "write it as registry.example.com, registry.example.com:5000 or 10.0.0.5:5000"
    s = _str(v, "a registry host[:port]", fix)
    m = re.fullmatch(rf"({DNS}|\[[0-9A-Fa-f:.]+\])(?::([0-9]{{1,5}}))?", s)
    if not m or (m.group(2) and not 1 <= int(m.group(2)) <= 65535):
        raise BadValue(f"{s!r} is not a registry host[:port]", fix)
    if m.group(1).startswith("[") and not is_ip(m.group(1)[1:-1]):
        raise BadValue(f"{s!r} is not a registry host[:port]", fix)
    return s


def loopback_listen(v: Any) -> str:
    fix = "write 127.0.0.1:6060 (or leave the key out: no debug listener)"
    s = _str(v, "a loopback ip:port", fix)
    m = re.fullmatch(r"(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]):([0-9]{1,5})", s)
    if not m or not is_ip(m.group(1).strip("[]")) or not 1 <= int(m.group(2)) <= 65535:
        raise BadValue(f"{s!r} is not a loopback ip:port: build steps and the network must not reach the debug "
                       f"listener", fix)
    return s


# ------------------------------------------------------------------ BuildKit

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?/)"
IMAGE = rf"{_DOMAIN}?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?"


def image_ref(v: Any) -> str:
    fix = "write [registry/]repository:tag or repository@sha256:<64 hex digits>, e.g. moby/buildkit:v0.13.2"
    s = _fullmatch(IMAGE, v, "an image reference", fix)
    last = s.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        raise BadValue(f"{s!r} is not pinned", "add a tag or a digest, e.g. moby/buildkit:v0.13.2")
    return s


def buildkit_version(v: Any) -> str:
    return _fullmatch(r"v[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", v, "a BuildKit version (vMAJOR.MINOR.PATCH)",
                      "write it as v0.13.2")


def prune_filter(v: Any) -> str:
    """A BuildKit prune/GC filter: key==value, key!=value or key~=value, from a safe alphabet."""
    return _fullmatch(r"[a-zA-Z][a-zA-Z0-9_.-]{0,63}(?:==|!=|~=)[A-Za-z0-9_.:/@+*-]{1,200}", v,
                      "a BuildKit filter", "write it as type==source.local, type!=regular or description~=npm")


def remote_path(v: Any) -> str:
    """An absolute directory on the host, from a safe character set."""
    fix = "write an absolute path of letters, digits, '.', '_', '-' and '/', such as /opt/buildkit-ops"
    s = _fullmatch(r"(?:/[A-Za-z0-9_.-]+)+", v, "an absolute path from a safe character set", fix)
    if any(part in (".", "..") for part in s.split("/")):
        raise BadValue(f"{s!r} has a '.' or '..' component", fix)
    return s


# Trees where others than root may create files (a planted symlink would then take root's writes elsewhere), or
# that hold the system's own files.
NOT_DATA_DIRS = ("/tmp", "/var/tmp", "/dev", "/run", "/home", "/root", "/proc", "/sys", "/etc", "/usr", "/bin",
                 "/sbin", "/lib", "/boot", "/var/lib/docker")


def data_dir(v: Any) -> str:
    """buildkit.data_dir: a remote_path outside world-writable, home and system trees."""
    s = remote_path(v)
    bad = next((d for d in NOT_DATA_DIRS if s == d or s.startswith(d + "/")), None)
    fix = "use a folder of its own such as /opt/buildkit-ops or /srv/buildkit"
    if bad is not None:
        raise BadValue(f"{s!r} is under {bad}, where others than root may write or the system keeps its own files",
                       fix)
    if s in ("/var", "/opt", "/srv"):
        raise BadValue(f"{s!r} is a shared system folder, not a folder of its own", fix)
    return s

_DOW = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:day|sday|nesday|rsday|urday)?"
_DOWS = rf"{_DOW}(?:(?:,|\.\.){_DOW})*"
_NUM = r"(?:\*|[0-9]{1,4})(?:(?:\.\.|/)[0-9]{1,4})?(?:,[0-9]{1,4}(?:(?:\.\.|/)[0-9]{1,4})?)*"
CALENDAR = (rf"(?:minutely|hourly|daily|weekly|monthly|yearly|annually|quarterly|semiannually)"
            rf"|(?:{_DOWS} )?(?:{_NUM}-{_NUM}-{_NUM} )?{_NUM}:{_NUM}(?::{_NUM})?"
            rf"|{_DOWS}(?: {_NUM}-{_NUM}-{_NUM})?")


def calendar(v: Any) -> str:
    """A systemd OnCalendar expression, in a strict subset of its syntax."""
    return _fullmatch(CALENDAR, v, "a systemd calendar expression this tool accepts",
                      "write daily, weekly, \"Sun 03:00\", \"Mon..Fri 02:30\" or \"*-*-* 04:00:00\"")


def platform(v: Any) -> str:
    """os/arch[/variant], as buildx and BuildKit write them."""
    return _fullmatch(r"[a-z0-9]{1,16}/[a-z0-9_]{1,16}(?:/[a-z0-9]{1,8})?", v, "a platform (os/arch[/variant])",
                      "write it as linux/amd64, linux/arm64 or linux/arm/v7")


# The platforms a host can emulate, and qemu's name for each (Debian's and Ubuntu's qemu-user-static).
EMULATORS = {"linux/arm64": "aarch64", "linux/arm/v7": "arm", "linux/arm/v6": "arm", "linux/ppc64le": "ppc64le",
             "linux/s390x": "s390x", "linux/riscv64": "riscv64", "linux/mips64le": "mips64el"}


def emulated_platform(v: Any) -> str:
    """A platform that qemu-user-static can emulate on an amd64 host."""
    p = platform(v)
    if p not in EMULATORS:
        raise BadValue(f"{p} is not a platform this tool can emulate",
                       "use one of: " + ", ".join(EMULATORS) + " (a host builds its own platform natively)")
    return p


# ------------------------------------------------------------------ operator-side paths

def local_path(v: Any) -> str:
    s = _str(v, "a file path", "write a path, relative to the inventory file or absolute")
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in s):
        raise BadValue(f"{s!r} holds a control character", "write a plain path")
    return s




# ------------------------------------------------------------- sizes and durations

SIZE_RE = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,6})?) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?", re.I)
DURATION_RE = re.compile(r"([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,9}s)?")
SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(value: Any) -> int:
    """'10GB' / '512MiB' / 1048576 -> bytes."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    if isinstance(value, int):
        n = value
    else:
        m = SIZE_RE.fullmatch(str(value))
        if not m:
            raise ValueError("not a size")
        n = int(float(m.group(1)) * SIZE_UNITS[(m.group(2) or "b").lower()])
    if not 0 <= n < 2**63:   # (BuildKit reads sizes as int64: a larger one ends its config's parse)
        raise ValueError("out of range")
    return n


def parse_duration(value: Any) -> int:
    """'48h' / '30m' / '1h30m' / '7d' -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    s = str(value)
    if re.fullmatch(r"[0-9]{1,5}d", s):
        return int(s[:-1]) * 86400
    m = DURATION_RE.fullmatch(s)
    if not s or not m:
        raise ValueError("not a duration")
    h, mi, se = (int(g[:-1]) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + se


# ------------------------------------------------------------------ plain kinds

def text(v: Any) -> str:
    return _str(v, "a non-empty string", "quote the value")


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise BadValue(f"must be true or false, got {v!r}", "write true or false")
    return v


def whole_number(lo: int = 0, hi: int | None = None) -> Callable[[Any], int]:
    span = f" from {lo} to {hi}" if hi else ""

    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            raise BadValue(f"must be a whole number{span}, got {v!r}", f"write a number{span}, without quotes")
        return v
    return check


def port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
        raise BadValue(f"must be a TCP port between 1 and 65535, got {v!r}", "write a number such as 1234")
    return v


def one_of(*allowed: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in allowed:
            raise BadValue(f"{v!r} is not allowed", "use one of: " + ", ".join(allowed))
        return str(v)
    return check


def size(v: Any) -> int:
    try:
        return parse_size(v)
    except ValueError:
        raise BadValue(f"{v!r} is not a size", "write a size such as 512MB, 10GB or 2GiB") from None


def space(v: Any) -> int | str:
    """A size, or a share of the disk ("10%")."""
    if isinstance(v, str) and re.fullmatch(r"[0-9]{1,3}%", v) and 0 < int(v[:-1]) <= 100:
        return v
    try:
        return parse_size(v)
    except ValueError:
        raise BadValue(f"{v!r} is not a disk space", "write a size such as 10GB or 512MiB, or a share of the disk "
                                                     "such as \"10%\"") from None


def duration(v: Any) -> int:
    try:
        return parse_duration(v)
    except ValueError:
        raise BadValue(f"{v!r} is not a duration", "write a duration such as 48h, 30m or 7d") from None


# Every kind the schema names, by name; `int:LO-HI` and `enum:A,B` are parametrised, `KIND_list` is a list of
# KIND and `path` a local file (both handled by the checker: their items' key paths and the inventory's folder).
KINDS: dict[str, Callable[[Any], Any]] = {
    "name": machine_name, "tenant_name": tenant_name, "user": user_name, "builder": builder_name,
    "address": host_address, "private_ip": private_ip, "vpn_subnet": vpn_subnet, "vpn_ip": vpn_ip,
    "client_source": client_source, "registry_host": registry_host, "loopback_listen": loopback_listen,
    "image": image_ref, "version": buildkit_version, "filter": prune_filter, "remote_path": remote_path,
    "data_dir": data_dir,
    "calendar": calendar, "platform": platform, "emulated_platform": emulated_platform, "str": text,
    "bool": boolean, "int": whole_number(), "port": port, "size": size, "space": space, "duration": duration,
    "path": local_path,
}


def kind(spec: str) -> Callable[[Any], Any]:
    """The check of a kind named in the schema."""
    if spec.startswith("int:"):
        lo, hi = (int(x) for x in spec[4:].split("-"))
        return whole_number(lo, hi)
    if spec.startswith("enum:"):
        return one_of(*spec[5:].split(","))
    return KINDS[spec]
