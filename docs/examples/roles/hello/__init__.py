"""hello: an operator's own role, the smallest that does something. It manages one file on every build host,
/etc/default/buildkit-ops-hello, saying who provisioned the host for which team; provision writes it when its
content, mode or owner differs (temp file, then rename), and a second run changes nothing.

Copy this folder to roles/hello/ beside your inventory.yml: `bkops provision --check` shows it, `bkops provision`
applies it. docs/roles.md explains each part."""
from __future__ import annotations

from buildkit_ops.engine.contract import Context, Options, Role, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.steps import file_steps
from buildkit_ops.inventory import BuildHost, Inventory

PATH = "/etc/default/buildkit-ops-hello"


class HelloRole(Role[BuildHost, str, str]):
    name = "hello"
    after = "buildkitd"          # where it joins the order of the built-in roles

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> str:
        """The role's own input, made on the operator machine: here, the greeting."""
        return f"hello from {target.name}, one of {len(inv.hosts)} build host(s); team's builds welcome"

    def parse(self, sections: dict[str, str]) -> str:
        return sections.get("hello_seen", "")

    def files(self, ctx: Context[BuildHost, str]) -> list[File]:
        # rendered through the escaping of its kind ("shell": every value one quoted word), from templates/ here
        # or from a templates/hello.env.j2 beside the inventory that overrides it
        text = self.templates.render("hello.env.j2", "shell", greeting=ctx.input, host=ctx.target.name)
        return [File(PATH, text.encode(), 0o644)]

    def plan(self, ctx: Context[BuildHost, str], facts: str, files: dict[str, FileState]) -> list[Step]:
        return file_steps(self.name, self.managed(ctx), files, [])

    def info(self, facts: str) -> dict[str, str]:
        return {"hello": facts}


ROLE = HelloRole()
