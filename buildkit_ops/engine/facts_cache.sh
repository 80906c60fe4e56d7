# bkops_cached KEY COMMAND...: the output of COMMAND, kept in /run (gone at reboot) under a hash of KEY and
# printed again while KEY stays the same. KEY must hold every input the output depends on (file contents,
# binaries, a daemon's pid, a container's start): a slow command (a Python CLI, `docker exec`) then runs
# once per change instead of on every run. The output is never a secret: only versions, status and rules.
bkops_cached() {
  _k=$(printf '%s' "$1" | sha256sum | cut -c1-32); shift
  _d=${BKOPS_FACTS_CACHE:-/run/buildkit-ops/facts}
  if [ -s "$_d/$_k" ]; then cat "$_d/$_k"; return 0; fi
  mkdir -p "$_d"; chmod 700 "$_d"
  find "$_d" -type f -mmin +1440 -delete 2>/dev/null
  "$@" > "$_d/$_k.$$" 2>/dev/null
  _rc=$?
  cat "$_d/$_k.$$"
  if [ "$_rc" -eq 0 ]; then mv -f "$_d/$_k.$$" "$_d/$_k"; else rm -f "$_d/$_k.$$"; fi
}
