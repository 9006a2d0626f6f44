"""`leadctl audience …`: audiences with deterministic variants and holdouts, recorded as
experiments that `leadctl report ab` evaluates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common

audience_app = typer.Typer(
    help="Audiences: export persons matching an expression with deterministic variants "
    "and a holdout, recorded as an experiment.",
    no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(audience_app, name="audience")


@audience_app.command("export")
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment's name (unique).")],
    expr: Annotated[str, typer.Argument(
        help="Who is in the audience: a rule expression, as in `leadctl find`.")],
    out: Annotated[Path, common.file_option(
        "-o", "--output", help="The audience file (.csv or .parquet): person_id, variant, "
        "bucket and contacts.")],
    variants: Annotated[str | None, typer.Option(
        "--variants", help="Variants and their relative weights; the first is the control. "
        "[default: A:50,B:50]", show_default=False)] = None,
    holdout: Annotated[str | None, typer.Option(
        "--holdout", help="Share held out (variant 'holdout', no contacts in the file), "
        "e.g. 10% or 0.1.", show_default=False)] = None,
    seed: Annotated[str | None, typer.Option(
        "--seed", help="Assignment seed: the same seed gives each person the same variant. "
        "[default: NAME]", show_default=False)] = None,
    control: Annotated[str | None, typer.Option(
        "--control", help="The control variant (or 'holdout'). [default: the first "
        "variant]", show_default=False)] = None,
    goal: Annotated[str | None, typer.Option(
        "--goal", help="The goal event type `report ab` counts by default, e.g. register.",
        show_default=False)] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Redefine an experiment of that name.")] = False,
    reveal: common.Reveal = False,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The experiment starts on this date (YYYY-MM-DD). Default: today.",
        show_default=False)] = None,
    json_out: common.Json = False,
) -> None:
    """Export the persons matching EXPR, each with a variant assigned from (person id,
    seed), and record them as experiment NAME for `leadctl report ab NAME`."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.audience_export(
        s.db, name, expr, out, variants=variants, holdout=holdout, seed=seed,
        control=control, goal=common.check_text("--goal", goal),
        as_of=common.parse_as_of(as_of), reveal=reveal, replace=replace,
        rules_dir=s.rules))
    if json_out:
        common.print_json(result)
        return
    split = ", ".join(f"{v['variant']} {v['persons']} ({v['planned'] * 100:g}% planned)"
                      for v in result["variants"])
    common.stdout_console(piped_width=120).print(
        f"experiment {result['experiment']}: {result['persons']} persons from "
        f"{result['start']}, {split}; control {result['control']}", markup=False,
        soft_wrap=True)
    common.stderr_console().print(f"wrote {result['rows']} rows to {result['file']}",
                                  markup=False)
    if result["as_of_differs"]:
        parts = ", ".join(f"{part} as of {result[part + '_as_of']}"
                          for part in result["as_of_differs"])
        common.warn(f"the audience was drawn from the stored {parts}, not recomputed for "
                    f"the start {result['start']}")
