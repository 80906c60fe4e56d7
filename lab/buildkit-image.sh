#!/usr/bin/env bash
# Assemble the lab's BuildKit image without a base image: the static buildkitd
# and buildctl built by buildkit_build.py, Debian's runc with the shared
# libraries it needs, busybox-static for a shell, and the CA bundle.
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
for lib in $(ldd "$runc" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
install -m 0755 /bin/busybox "$root/bin/busybox"
for app in sh ls cat ps wget mkdir rm cp mv ln env sleep grep mount; do ln -s busybox "$root/bin/$app"; done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
tar -C "$root" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/bin/buildkitd"]' \
  -c 'ENV PATH=/usr/bin:/bin' \
  -c 'VOLUME /var/lib/buildkit' \
  - "$tag" >/dev/null
