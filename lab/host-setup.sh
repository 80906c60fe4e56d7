#!/usr/bin/env bash
# Prepare the operator machine (Debian 12) for the lab: apt sources, the Docker
# engine, debootstrap, and a Python virtualenv with the pinned dependencies.
# Idempotent: a warm machine passes through in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

need_update=0
# The Debian mirror this machine already uses (never a hard-coded host).
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "cannot find the Debian mirror in /etc/apt/sources.list(.d)" >&2; exit 1; }
add_source() {   # add_source NAME TYPES SUITE: one more apt source of Debian's mirror, once
  [ -f "/etc/apt/sources.list.d/$1.sources" ] && return 0
  printf 'Types: %s\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$2" "$mirror" "$3" \
    /usr/share/keyrings/debian-archive-keyring.gpg >"/etc/apt/sources.list.d/$1.sources"
  need_update=1
}
add_source buildkit-ops-trixie "deb deb-src" trixie
if [ ! -f /etc/apt/preferences.d/buildkit-ops-trixie ]; then
  # Trixie only when asked for by name: a plain install must never upgrade libc6.
  cat >/etc/apt/preferences.d/buildkit-ops-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
fi
add_source buildkit-ops-bookworm-src deb-src bookworm

# (chromium: the report test looks at `bkops report`'s page as a person would, in a headless browser)
pkgs=(docker.io runc lua5.4 busybox-static containernetworking-plugins debootstrap patch patchutils apt-utils iptables iproute2 openssh-client rsync xz-utils dpkg-dev curl ca-certificates chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ] || [ ! -f /var/lib/apt/lists/lock ]; then
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Compose v2 and buildx for the operator machine come from trixie (libc-only deps).
for p in docker-compose docker-buildx; do
  if ! dpkg-query -W -f='${Version}' "$p" 2>/dev/null | grep -q '^2\|^0\.1'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p/trixie" >/dev/null
  fi
done

# The Docker engine: start it if it is not answering. A daemon killed earlier (a session that ended)
# leaves pid files behind that make the next one refuse to start: drop those that name no live daemon.
live() {  # live PID NAME: PID runs NAME and is not a zombie
  [ -r "/proc/$1/status" ] && grep -q "^Name:[[:space:]]*$2" "/proc/$1/status" && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}
if ! docker info >/dev/null 2>&1; then
  for pf in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
    f=${pf%%:*} name=${pf##*:}
    if [ -f "$f" ] && ! live "$(cat "$f" 2>/dev/null)" "$name"; then rm -f "$f"; fi
  done
  if [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    mkdir -p /var/log
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

# Python environment, keyed by the requirements file: every package at the exact version and hash of the lock
# (requirements.txt, compiled from requirements.in by pip-compile --generate-hashes).
req_hash=$(sha256sum requirements.txt | cut -c1-16)
if [ ! -f .venv/.req-$req_hash ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.txt \
    2> >(grep -v "is ignored: it is neither" >&2)
  rm -f .venv/.req-*
  touch .venv/.req-$req_hash
fi

# The Kubernetes manifest scanners (tests/unit/flows/test_kubernetes_scan.py), keyed by their requirements file.
scan_hash=$(sha256sum requirements-scan.txt | cut -c1-16)
if [ ! -f .venv-scan/.req-$scan_hash ]; then
  python3 -m venv .venv-scan
  .venv-scan/bin/pip install -q --disable-pip-version-check -r requirements-scan.txt 2> >(grep -v "is ignored: it is neither" >&2)
  rm -f .venv-scan/.req-*
  touch .venv-scan/.req-$scan_hash
fi
