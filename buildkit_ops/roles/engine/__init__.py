"""engine: Docker Engine and Compose v2 on the host, installed from the
distribution's packages when missing (Debian, Ubuntu); anything else stops
with a clear message before a single change."""
from __future__ import annotations

from .. import Step

FACTS = r"""
echo @@os; ( . /etc/os-release 2>/dev/null && echo "${ID:-unknown} ${VERSION_ID:-0} ${ID_LIKE:-}" ) || echo "unknown 0"
echo @@docker; docker version --format '{{.Server.Version}}' 2>/dev/null || true
echo @@compose; docker compose version --short 2>/dev/null || true
"""

SUPPORTED = ("debian", "ubuntu")


class UnsupportedHost(Exception):
    pass


def packages(os_id: str, version: str) -> list[str]:
    """Distribution packages that give Docker Engine + Compose v2."""
    if os_id == "ubuntu":
        return ["docker.io", "docker-compose-v2"]
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if major >= 13:
        return ["docker.io", "docker-compose"]
    # Debian 12: Compose v2 is packaged in trixie and depends only on libc.
    return ["docker.io", "docker-compose/trixie"]


def plan(facts: dict[str, str]) -> list[Step]:
    os_id, version, *like = (facts.get("os") or "unknown 0").split() + [""]
    docker, compose = facts.get("docker", ""), facts.get("compose", "")
    if docker and compose.startswith(("2.", "v2.")):
        return [Step("engine", "docker engine and compose", False, f"docker {docker}, compose {compose}")]
    family = os_id if os_id in SUPPORTED else next((x for x in like if x in SUPPORTED), None)
    if family is None:
        what = "Docker Engine" if not docker else "Compose v2"
        raise UnsupportedHost(f"{what} is missing and this OS ({os_id} {version}) is not Debian or Ubuntu: "
                              f"install Docker Engine and the Compose v2 plugin yourself, then re-run")
    pkgs = packages(family, version)
    script = ""
    if any(p.endswith("/trixie") for p in pkgs):
        # trixie from the mirror the host already uses, pinned low: only what we name comes from it
        script += ("test -f /etc/apt/sources.list.d/trixie-compose.sources || { "
                   "m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null); "
                   "[ -n \"$m\" ] || m=$(awk '$1==\"deb\"{b=0; for(i=2;i<=NF;i++){if($i~/^\\[/)b=1; "
                   "if(!b){print $i; exit} if($i~/\\]$/)b=0}}' /etc/apt/sources.list); "
                   "printf 'Types: deb\\nURIs: %s\\nSuites: trixie\\nComponents: main\\n' \"$m\" "
                   "> /etc/apt/sources.list.d/trixie-compose.sources; "
                   "printf 'Package: *\\nPin: release n=trixie\\nPin-Priority: 100\\n' "
                   "> /etc/apt/preferences.d/trixie-compose; }\n")
    script += ("export DEBIAN_FRONTEND=noninteractive\napt-get update -qq\n"
               f"apt-get install -y -qq --no-install-recommends {' '.join(pkgs)}\n"
               "systemctl enable --now docker\n")
    return [Step("engine", "docker engine and compose", True, f"install {' '.join(pkgs)}", script=script)]
