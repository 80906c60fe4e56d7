"""Roles: one concern each, in the shape of Ansible's roles/<name>/.

A role is a folder here holding
  facts.sh      what the role needs to know about the host, printed as `@@name` sections; the values it needs
                (a port, an image) come in as environment variables from `fact_env`, quoted. All roles' facts
                run in ONE batched SSH round trip, and each role parses its own sections once (`parse`);
  __init__.py   `ROLE`: the role's managed files (`files`, rendered from its templates/), its pure
                `plan(ctx, facts, files)` from wanted state and facts to Steps (each `ok` or `changed`, with
                the script that changes it), its handlers (run once at the end when a step notified them;
                each owns its own protocol with the host), and optionally a `verify` after the changes;
  templates/    Jinja templates of its files (rendered by buildkit_ops.engine.render, escaped for their language).

The runner (buildkit_ops/engine/runner.py) gathers, plans, shows or applies, runs handlers and verifies for the
ordered list below, and names no role. Adding a role is a folder and one line in ORDER.
"""
