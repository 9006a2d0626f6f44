"""`leadctl identity …`: identity stewardship — overrides (link / unlink), suggested
matches (suggest / accept / reject), why / why-not, shared-value suspects and ownership
conflicts."""

from __future__ import annotations

import typer

from leadctl import api
from leadctl.cli import common

identity_app = typer.Typer(
    help="Identity stewardship: why two leads are (not) one person, suggested matches, "
    "overrides that survive rebuilds, shared-value suspects, ownership conflicts.",
    no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")


@identity_app.command("conflicts")
def conflicts(ctx: typer.Context, json_out: common.Json = False) -> None:
    """Ownership conflicts: active sale locks of two reps that an identity merge brought
    together. The merged person kept the earlier sale; a manager decides about the other.
    Exit 0 (also when there are none)."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.identity_conflicts(s.db))
    if json_out:
        common.print_json(result)
        return
    rows = result["conflicts"]
    if not rows:
        common.stdout_console().print("no ownership conflicts", markup=False, highlight=False)
        return
    common.stdout_console().print(common.table(
        f"{len(rows)} ownership conflict(s): the merged person kept the earlier sale",
        ["person", "kept rep", "sold", "locked until", "other rep", "other sold",
         "other locked until", "merged ids", "run"],
        [[c["person_id"], c["kept"]["rep"], c["kept"]["sold_at"], c["kept"]["locked_until"],
          c["other"]["rep"], c["other"]["sold_at"], c["other"]["locked_until"],
          ", ".join(c["old_person_ids"]), c["run_id"]] for c in rows],
        drop=("merged ids", "other locked until", "run")))
