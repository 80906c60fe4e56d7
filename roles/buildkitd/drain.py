"""A daemon's restart: the drain before it (wait until none of its builds runs, telling the operator as it goes),
and the recreation (compose up with the new config hash, then wait until it answers)."""
from __future__ import annotations

from buildkit_ops.engine.contract import HandlerFailed
from buildkit_ops.engine.shell import quote
from buildkit_ops.insights.daemon_queries import answers, running_builds
from buildkit_ops.inventory.daemons import SOCK


def drain_script(wait: int, force: bool, container: str) -> str:
    """Wait until no build runs on a daemon (a new config or image restarts it); after `wait` seconds give up
    (exit 75) or, forced, go on."""
    give_up = 'echo @@forced; echo "$n"; break' if force else 'echo @@busy; echo "$n"; exit 75'
    c = quote(container)
    return f"""if [ "$(docker inspect -f '{{{{.State.Running}}}}' {c} 2>/dev/null)" = true ]; then
  end=$(( $(date +%s) + {int(wait)} ))
  while :; do
    n=$({running_builds(f"docker exec {c} buildctl --addr {SOCK}")})
    [ "$n" -eq 0 ] && break
    if [ "$(date +%s)" -ge "$end" ]; then {give_up}; fi
    # tell the operator as it goes: when the count changes, and every 30 s
    if [ "$n" != "${{said:-}}" ] || [ $(( ($(date +%s) - end) % 30 )) -eq 0 ]; then
      echo "@@note restart waits for $n running build(s) to finish ($(( end - $(date +%s) )) s left of --wait)" >&2
      said=$n
    fi
    sleep 1
  done
fi
"""


def refuse_if_busy(rc: int, out: dict[str, str], wait: int, who: str = "") -> None:
    """The drain's answer when builds still ran after the wait (exit 75, `@@busy N`): nothing restarted."""
    if rc == 75 and out.get("busy"):
        raise HandlerFailed(f"{who}not restarted: {out['busy']} build(s) still running after {wait}s. The new "
                            f"files are in place; re-run when the builds are done, or with --force to restart now "
                            f"(running builds fail)", f"{out['busy']} build(s) still running after {wait}s")


def up_script(compose_file: str, config_hash: str, container: str) -> str:
    """Compose up with the config hash (Compose recreates the container when it differs; the cache volume stays),
    then wait until the daemon answers on its socket: `ok` is set when it did."""
    c, f = quote(container), quote(compose_file)
    return f"""T=$(mktemp)
if ! BKOPS_CONFIG_HASH={config_hash} docker compose -f {f} up -d --remove-orphans --quiet-pull >"$T" 2>&1
then tail -20 "$T" >&2; rm -f "$T"; exit 1; fi
rm -f "$T"
ok=
for i in $(seq 1 120); do
  {answers(f"docker exec {c} buildctl --addr {SOCK}")} && {{ ok=1; break; }}
  sleep 0.5
done
"""
