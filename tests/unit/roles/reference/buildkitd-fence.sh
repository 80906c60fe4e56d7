#!/bin/sh
# fence.sh: the build steps' fence, written by buildkit-ops. Do not edit here (run `invoke provision`).
# `fence.sh apply` (entrypoint.sh, before buildkitd starts; provision, when a rule went missing) puts every
# rule in place; `fence.sh check` (the facts of provision and status) prints `missing: RULE` for each absent
# one and changes nothing. It runs where the host's network namespace is: buildkitd's container shares it.
#
# Build steps run on their own bridge (buildkitd.toml: bridgeName, bridgeSubnet). From there, nothing may reach:
#  - an address of this host (SSH, the debug listener, anything listening), nor its broadcast and multicast
#    addresses (mDNS and the like, which ufw's own rules let in);
#  - the link-local range (cloud metadata services live at 169.254.169.254);
#  - another build step on the bridge (with br_netfilter, bridged traffic passes these rules);
#  - another container of this host (Docker's bridges: docker0 and br-*);
#  - anything over IPv6 (steps have no IPv6 route: all of it is dropped, link-local included).
# And nothing in the host's namespace (buildkitd resolving an image, any process) opens a connection to a step.
# The rules live in the raw and mangle tables, which Docker, CNI and ufw never flush. If a rule cannot be put in
# place, or IPv6 is on and ip6tables is missing, or bridged traffic would bypass iptables, apply fails and
# buildkitd does not start: never a build without the fence.
set -u
mode=${1:-apply}
case "$mode" in apply|check) ;; *) echo "usage: fence.sh apply|check" >&2; exit 2 ;; esac

down() {  # down WHAT: the fence cannot hold
  if [ "$mode" = check ]; then echo "missing: $1"; return 0; fi
  echo "fence.sh: $1: refusing to run build steps without the fence" >&2
  exit 1
}

rule() {  # rule TOOL TABLE CHAIN ARG...: present, or added at the top (apply) / reported (check)
  tool=$1 table=$2 chain=$3
  shift 3
  "$tool" -w -t "$table" -C "$chain" "$@" 2>/dev/null && return 0
  if [ "$mode" = check ]; then echo "missing: $tool -t $table $chain $*"; return 0; fi
  "$tool" -w -t "$table" -I "$chain" 1 "$@" || down "cannot add: $tool -t $table $chain $*"
}

if ! command -v iptables >/dev/null 2>&1; then down "iptables is not installed"; exit 0; fi
# bridged traffic (step to step) reaches iptables only through br_netfilter: switch it on, or stop
nf=/proc/sys/net/bridge/bridge-nf-call-iptables
if [ "$(cat $nf 2>/dev/null)" != 1 ]; then
  [ "$mode" = apply ] && echo 1 > $nf 2>/dev/null
  [ "$(cat $nf 2>/dev/null)" = 1 ] || down "bridged traffic bypasses iptables ($nf is not 1)"
fi
rule iptables raw PREROUTING -i buildkit0 -m addrtype --dst-type LOCAL -j DROP
rule iptables raw PREROUTING -i buildkit0 -m addrtype --dst-type BROADCAST -j DROP
rule iptables raw PREROUTING -i buildkit0 -m addrtype --dst-type MULTICAST -j DROP
rule iptables raw PREROUTING -i buildkit0 -d 169.254.0.0/16 -j DROP
rule iptables raw PREROUTING -i buildkit0 -d 10.10.0.0/16 -j DROP
rule iptables mangle FORWARD -i buildkit0 -o docker0 -j DROP
rule iptables mangle FORWARD -i buildkit0 -o br-+ -j DROP
# nothing in the host's own namespace opens a connection to a build step: buildkitd runs there (every daemon of
# the host), and a client that names a step's address as a registry (FROM 10.11.5.2:8080/x) would otherwise
# have a daemon connect to another build's, or another tenant's, step for it
rule iptables mangle OUTPUT -d 10.10.0.0/16 -m conntrack --ctstate NEW -j DROP
if [ -e /proc/net/if_inet6 ]; then
  if command -v ip6tables >/dev/null 2>&1; then rule ip6tables raw PREROUTING -i buildkit0 -j DROP
  else down "IPv6 is on and ip6tables is not installed"; fi
fi
exit 0
