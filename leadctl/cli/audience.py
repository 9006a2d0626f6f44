"""`leadctl audience …`: audiences with deterministic variants and holdouts, recorded as
experiments that `leadctl report ab` evaluates."""

from __future__ import annotations

import typer

audience_app = typer.Typer(
    help="Audiences: export persons matching an expression with deterministic variants "
    "and a holdout, recorded as an experiment.",
    no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(audience_app, name="audience")
