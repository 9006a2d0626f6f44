"""`leadctl identity …`: identity stewardship — overrides (link / unlink), suggested
matches (suggest / accept / reject), why / why-not, shared-value suspects and ownership
conflicts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common
from leadctl.identity.overrides_file import entry_text

identity_app = typer.Typer(
    help="Identity stewardship: why two leads are (not) one person, suggested matches, "
    "overrides that survive rebuilds, shared-value suspects, ownership conflicts.",
    no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")


# -- overrides: link / unlink (identity/overrides_cmd.py) ----------------------------------------

_A = Annotated[str, typer.Argument(help="A lead id (source/lead_id when several sources use "
                                   "it), or a person id, phone, e-mail… of a person.")]
_B = Annotated[str, typer.Argument(help="The other lead or person, as A.")]
_REASON = Annotated[str, typer.Option("--reason", help="Why (kept with the override for "
                                      "review).", show_default=False)]
_BY = Annotated[str | None, typer.Option("--by", help="Who decided (default: $LEADCTL_USER, "
                                         "else the login name).", show_default=False)]


@identity_app.command("link")
def link(ctx: typer.Context, a: _A, b: _B, reason: _REASON, by: _BY = None,
         json_out: common.Json = False) -> None:
    """Keep A and B one person in every rebuild: appends a must_link to
    rules/identity_overrides.yaml, applied by the next resolve."""
    _override(ctx, api.identity_link, a, b, reason, by, json_out)


@identity_app.command("unlink")
def unlink(ctx: typer.Context, a: _A, b: _B, reason: _REASON, by: _BY = None,
           json_out: common.Json = False) -> None:
    """Keep A and B apart in every rebuild: appends a cannot_link to
    rules/identity_overrides.yaml, applied by the next resolve (it cuts the values that
    join them)."""
    _override(ctx, api.identity_unlink, a, b, reason, by, json_out)


def _override(ctx: typer.Context, write, a: str, b: str, reason: str, by: str | None,
              json_out: bool) -> None:
    s = common.settings(ctx)

    def action():
        common.check_text("--by", by)
        return write(s.db, s.rules, a, b, reason, by)

    result = common.run(ctx, action)
    if json_out:
        common.print_json({"written": result["written"], "file": result["file"]})
    else:
        sys.stdout.write(entry_text(result["written"]))
    entry = result["written"]
    names = " and ".join(f"{x['source']}/{x['lead_id']}" for x in entry["leads"])
    if result["same_person"] and entry["kind"] == "must_link":
        note = f"{names} are already one person; the link keeps them so"
    elif not result["same_person"] and entry["kind"] == "cannot_link":
        note = f"{names} are not one person now; the unlink keeps them apart"
    else:
        note = f"{entry['kind']} of {names}"
    sys.stderr.write(f"{note}: appended to {result['file']}; applied by the next "
                     "`leadctl resolve`\n")
