"""The gateway's log (its audit trail) read from its newest line back to a point in time, and no further: `audit`,
`builds` and `status` ask for a window (24 hours, a week), and a log of 100 MB must not be read whole for it
(`docker logs --since` decodes every line from the oldest file on).

On the host, Docker's json-file log files (the live one, then its rotations .1, .2, ...) are read backwards
(`tac`, which reads from the end) and the reading stops at the first line older than the window: each line is a
JSON object whose last key is Docker's receipt time. The lines travel compressed (a day of a busy gateway is
megabytes of JSON; gzip makes it a seventh), newest first, and are decoded here into `docker logs --timestamps`
text, oldest first, as the audit parser reads it."""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Sequence

from buildkit_ops.engine.shell import quote

ROTATIONS = 9   # json-file keeps max-file - 1 rotated files (the gateway's compose file: 5 files)


def script(container: str, seconds: int, containing: Sequence[str] = (), starting: Sequence[str] = (),
           newest: int | None = None) -> str:
    """Shell printing the raw log lines of `container` of the last `seconds` (by the host's clock), newest first,
    gzipped and in base64 on one line; with `containing` or `starting`, only lines whose text contains one of
    those, or starts with one of these; with `newest`, at most that many."""
    files = " ".join(f'"$F"{f".{n}" if n else ""}' for n in range(ROTATIONS + 1))
    # (a text as it stands in the raw line: JSON-escaped inside the "log" string, which a line's text starts)
    patterns = [json.dumps(t)[1:-1] for t in containing] + ['"log":' + json.dumps(t)[:-1] for t in starting]
    keep = (" | grep -F " + " ".join(f"-e {quote(p)}" for p in patterns)) if patterns else ""
    head = f" | head -n {int(newest)}" if newest else ""
    return f"""F=$(docker inspect -f '{{{{.LogPath}}}}' {quote(container)}) || exit 1
S=$(date -u -d "@$(( $(date +%s) - {int(seconds)} ))" +%Y-%m-%dT%H:%M:%S)
for f in {files}; do [ -f "$f" ] && tac "$f"; done \\
  | awk -v s="$S" '{{ i = index($0, "\\"time\\":\\""); if (i && substr($0, i + 8, 19) < s) exit; print }}' \\
  {keep}{head} | gzip -1 | base64 -w0
echo
"""


def _timestamp(t: str) -> str:
    """Docker's receipt time (RFC 3339, its fraction without trailing zeros) with nine digits, as `docker logs
    --timestamps` prints it."""
    base, _, frac = t.rstrip("Z").partition(".")
    return f"{base}.{(frac + '0' * 9)[:9]}Z"


def as_log_text(raw: str) -> str:
    """The script's output as `docker logs --timestamps` text (oldest first); a line cut short (the log rotated
    while it was read) is skipped, and output that is not the script's (a host that could not run it) is none."""
    try:
        lines = gzip.decompress(base64.b64decode(raw.strip(), validate=True)).decode(errors="replace").splitlines()
    except (binascii.Error, ValueError, OSError, EOFError, zlib.error):
        return ""
    out = []
    for line in reversed(lines):
        try:
            entry = json.loads(line)
            out.append(f"{_timestamp(entry['time'])} {entry['log'].rstrip(chr(10))}")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return "\n".join(out)
