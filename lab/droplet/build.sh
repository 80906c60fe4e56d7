#!/usr/bin/env bash
# Build the lab's droplet image from Debian packages: a minimal bookworm with
# systemd, sshd, sudo, ufw (with ipset), the Docker engine, Compose v2 and buildx (trixie), the CI issuer's
# python3-jwt and python3-cryptography (as the ci_issuer role would install them),
# the registry server and the helpers the tests use. No SSH host keys and an
# empty machine-id, so every droplet gets its own at first boot.
# Usage: build.sh TAG     (the caller keys TAG by this directory's content)
set -euo pipefail
tag=$1
here=$(cd "$(dirname "$0")" && pwd)
cache=${BKOPS_CACHE:-/var/cache/buildkit-ops}
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
mkdir -p "$cache"
work=$(mktemp -d "$cache/droplet.XXXXXX")
trap 'umount -R "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
include=openssh-server,sudo,iptables,ipset,ufw,nftables,ca-certificates,iproute2,procps,docker.io,systemd,systemd-sysv,dbus,iputils-ping,netcat-openbsd,curl,docker-registry,apache2-utils,python3,less
echo "[droplet] debootstrap bookworm" >&2
debootstrap --variant=minbase --include="$include" bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
echo "[droplet] trixie compose v2 + buildx" >&2
mkdir -p "$work/debs"
(cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root docker-compose/trixie docker-buildx/trixie)
# (debootstrap's --include configures python3-cryptography before its cffi backend and fails: installed here)
echo "[droplet] the CI issuer's python3-jwt and python3-cryptography" >&2
(cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root python3-jwt/bookworm \
   python3-cryptography/bookworm python3-cffi-backend/bookworm)
cp "$work"/debs/*.deb "$work/root/tmp/"
chroot "$work/root" sh -c 'dpkg -i /tmp/*.deb >/dev/null && rm /tmp/*.deb'
install -m 0755 "$here/lab-init" "$work/root/usr/local/sbin/lab-init"
install -m 0644 "$here/lab-ssh-hostkeys.service" "$work/root/etc/systemd/system/"
install -d "$work/root/etc/docker" && install -m 0644 "$here/daemon.json" "$work/root/etc/docker/daemon.json"
chroot "$work/root" sh -e -c '
  systemctl enable lab-ssh-hostkeys.service ssh.service docker.service >/dev/null 2>&1
  systemctl disable docker-registry.service >/dev/null 2>&1 || true
  systemctl mask systemd-logind.service getty@.service console-getty.service systemd-udevd.service systemd-modules-load.service >/dev/null 2>&1 || true
  rm -f /etc/ssh/ssh_host_*
  : > /etc/machine-id
  rm -f /var/lib/dbus/machine-id
  mkdir -p /root/.ssh && chmod 700 /root/.ssh
  echo "PermitRootLogin prohibit-password" > /etc/ssh/sshd_config.d/lab.conf
  echo "PasswordAuthentication no" >> /etc/ssh/sshd_config.d/lab.conf
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
'
echo "[droplet] docker import $tag" >&2
tar -C "$work/root" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/local/sbin/lab-init"]' \
  -c 'ENV container=docker' \
  - "$tag" >/dev/null
