#!/bin/sh
# entrypoint.sh of buildkitd: written by buildkit-ops. Do not edit here (run `invoke provision`).
# Runs inside the buildkitd container: on a build host it shares the host's network namespace (compose:
# network_mode host); in a Kubernetes pod, the pod's.
set -e
# Build steps run on their own bridge: fence it off (fence.sh) before the first build can start. A failure
# there stops buildkitd from starting: never a build without the fence.
/bin/sh /etc/buildkit/fence.sh apply
exec buildkitd --config /etc/buildkit/buildkitd.toml
