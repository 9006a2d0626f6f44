"""`leadctl identity …`: identity stewardship — overrides (link / unlink), suggested
matches (suggest / accept / reject), why / why-not, shared-value suspects and ownership
conflicts."""

from __future__ import annotations

import typer

identity_app = typer.Typer(
    help="Identity stewardship: why two leads are (not) one person, suggested matches, "
    "overrides that survive rebuilds, shared-value suspects, ownership conflicts.",
    no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")
