"""Reading `docker buildx build --progress plain`: which of a project's RUN and COPY steps were CACHED."""
from __future__ import annotations

import re


def step_states(output: str) -> dict[str, str]:
    """'[2/4] RUN ...' -> 'CACHED' or 'DONE' (or '?' when neither was printed)."""
    names: dict[str, str] = {}
    states: dict[str, str] = {}
    for line in output.splitlines():
        m = re.match(r"^#(\d+) (\[.*)$", line)
        if m and m.group(1) not in names:
            names[m.group(1)] = m.group(2)
        m = re.match(r"^#(\d+) (CACHED|DONE)", line)
        if m:
            states.setdefault(m.group(1), m.group(2))
    return {names[i]: states.get(i, "?") for i in names if re.match(r"\[\d+/\d+\] (RUN|COPY)", names[i])}
