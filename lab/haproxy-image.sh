#!/usr/bin/env bash
# Assemble the lab's HAProxy image (the gateway, and the clients' `failover: proxy`) without Docker Hub: Debian
# trixie's haproxy 3.0 (an LTS line; bookworm's 2.6 gets critical fixes only and lacks `timeout client-hs`),
# installed in a throwaway droplet container (trixie's libc comes along there, never on a droplet), copied with
# the shared libraries it needs into an image of its own, with the paths of the upstream `haproxy` image
# (/usr/local/sbin, /usr/local/etc/haproxy).
# Usage: haproxy-image.sh DROPLET_IMAGE TAG
set -euo pipefail
droplet=$1 tag=$2
docker run --rm -i --entrypoint bash "$droplet" -s <<'EOS' | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/bin' \
  -c 'ENTRYPOINT ["haproxy"]' \
  -c 'CMD ["-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
  - "$tag" > /dev/null
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
echo "deb $mirror trixie main" > /etc/apt/sources.list.d/trixie.list
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends haproxy/trixie >&2
root=$(mktemp -d)
mkdir -p "$root"/usr/local/sbin "$root"/usr/local/etc/haproxy "$root"/tmp "$root"/etc "$root"/var/lib/haproxy
chmod 1777 "$root/tmp"
install -m 0755 /usr/sbin/haproxy "$root/usr/local/sbin/haproxy"
for lib in $(ldd /usr/sbin/haproxy | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
tar -C "$root" -c .
EOS
