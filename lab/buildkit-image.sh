#!/usr/bin/env bash
# Assemble the lab's BuildKit image without a base image: the static buildkitd
# and buildctl built by buildkit_build.py, Debian's runc with the shared
# libraries it needs, busybox-static for a shell, and the CA bundle; for
# sandboxed build steps, Debian's CNI plugins under the names the upstream
# image gives them (buildkit-cni-*, found on PATH by buildkitd's bridge mode)
# and iptables (the real xtables-nft-multi, not Debian's alternatives symlink,
# with its extensions), which the bridge and firewall plugins call.
# Usage: buildkit-image.sh BINDIR TAG
set -euo pipefail
bindir=$1 tag=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{usr/bin,bin,etc/ssl/certs,etc/buildkit,var/lib/buildkit,tmp,run,proc,sys,dev}
chmod 1777 "$root/tmp"
install -m 0755 "$bindir/buildkitd" "$bindir/buildctl" "$root/usr/bin/"
runc=$(command -v runc)
install -m 0755 "$runc" "$root/usr/bin/runc"
for p in bridge loopback host-local firewall; do
  install -m 0755 "/usr/lib/cni/$p" "$root/usr/bin/buildkit-cni-$p"
done
xt=$(readlink -f /usr/sbin/xtables-nft-multi)
install -m 0755 "$xt" "$root/usr/bin/xtables-nft-multi"
for t in iptables ip6tables iptables-save iptables-restore ip6tables-save ip6tables-restore; do
  ln -s xtables-nft-multi "$root/usr/bin/$t"
done
mkdir -p "$root/usr/lib/xtables"
cp -L /usr/lib/x86_64-linux-gnu/xtables/*.so "$root/usr/lib/xtables/"
for bin in "$runc" "$xt" /usr/lib/x86_64-linux-gnu/xtables/*.so; do
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
  done
done
install -m 0755 /bin/busybox "$root/bin/busybox"
for app in sh ls cat ps wget mkdir rm cp mv ln env sleep grep sed head mount; do ln -s busybox "$root/bin/$app"; done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
tar -C "$root" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/bin/buildkitd"]' \
  -c 'ENV PATH=/usr/bin:/bin' \
  -c 'ENV XTABLES_LIBDIR=/usr/lib/xtables' \
  -c 'VOLUME /var/lib/buildkit' \
  - "$tag" >/dev/null
