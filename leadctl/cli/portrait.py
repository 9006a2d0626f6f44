"""`leadctl portrait QUERY`: one screen (≤ 40 lines at 100 columns) about one person.

Rendering lives in `portrait_view` (no typer) so `leadctl.cli.main` can serve a plain
`leadctl portrait QUERY` without loading typer at all.
"""

from __future__ import annotations

from typing import Annotated

import typer

from leadctl.cli import common
from leadctl.cli.portrait_view import show_portrait


def register(app: typer.Typer) -> None:
    app.command("portrait")(portrait)


def portrait(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Phone (any format), email, WeChat id, ID card, "
                     "device id, lead id or person id; force a kind with a prefix such as "
                     "lead:, phone:, person:.")],
    reveal: common.Reveal = False,
    as_of: common.ViewAsOf = None,
    json_out: common.Json = False,
) -> None:
    """One person's portrait: contacts, grade and score, pool/owner, linked leads, tags,
    activity and history. Exit 1 when nothing (or more than one person) matches."""

    s = common.settings(ctx)
    common.run(ctx, lambda: show_portrait(s.db, query, reveal, as_of, json_out))
