# Install the packages named in "$@" in one apt transaction, waiting for another package manager to finish (an
# interrupted provision's apt-get that still runs, unattended-upgrades on a fresh cloud VM) instead of failing;
# a dpkg interrupted half-way is finished first. apt at quiet level 1 says whose lock it waits for, and that is
# reported back as a `bkops-told:` line.
export DEBIAN_FRONTEND=noninteractive
L=$(mktemp)
t0=$(date +%s)
lock=""
# (no translations of package descriptions: nothing here reads them, and they are half of what update fetches)
apt_get() { apt-get -q -o DPkg::Lock::Timeout=900 -o Acquire::Languages=none "$@" >>"$L" 2>&1; }
fail() { tail -20 "$L" >&2; rm -f "$L"; exit 1; }
# A note reaches the operator as it comes: on fd 3, the command's own stderr (the runner's batch opens it; the
# step's output goes to a file), and nowhere when fd 3 is not open.
note() { { echo "@@note $*" >&3; } 2>/dev/null || true; }
note "installing $* (one apt transaction)"
# `apt-get update` does not wait for the lists lock by itself (DPkg::Lock::Timeout is the dpkg lock's)
until apt_get update; do
  grep -q 'Could not get lock' "$L" || fail
  [ -n "$lock" ] || { lock=$(grep -o 'held by process [0-9]* ([^)]*)' "$L" | head -1)
                      note "waiting for the package lock $lock"; }
  [ $(( $(date +%s) - t0 )) -lt 900 ] || fail
  : >"$L"
  sleep 2
done
if ! apt_get install -y --no-install-recommends "$@"; then
  grep -q 'dpkg --configure -a' "$L" || fail
  dpkg --configure -a >>"$L" 2>&1 || fail
  apt_get install -y --no-install-recommends "$@" || fail
fi
lock=${lock:-$(grep -o 'held by process [0-9]* ([^)]*)' "$L" | head -1)}
rm -f "$L"
[ -z "$lock" ] || echo "bkops-told: waited for the package lock $lock; $(( $(date +%s) - t0 )) s in all"
