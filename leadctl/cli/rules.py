"""`leadctl rules check` and `leadctl rules test`."""

from __future__ import annotations

from typing import NoReturn

import typer

from leadctl import api
from leadctl.cli import common, output
from leadctl.errors import DataCheckFailed, RuleError
from leadctl.ruletest import nothing_checked

rules_app = typer.Typer(help="Validate rule files; run rule fixtures.", no_args_is_help=True,
                        rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def check(ctx: typer.Context, json_out: common.Json = False) -> None:
    """Parse and validate every rule file (and check it against the workspace data when
    there is one). Each problem is printed as file:line:col: reason. Exit 2 when invalid."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: _problems_as_value(lambda: api.rules_check(s.db, s.rules)))
    if isinstance(result, RuleError):
        _report_rule_error(ctx, result)
    for warning in result["warnings"]:
        common.warn(warning)
    if json_out:
        common.print_json(result)
    else:
        data = f"checked against {result['db']}" if result.get("db") else "no workspace data"
        files = len(result["files"])
        nightly = result["nightly"]
        lines = [f"rules ok: {files} file{'s' if files != 1 else ''}, "
                 f"{result['tags']} tags ({data})",
                 f"later nights: {len(nightly['folded'])} tags folded from stored partials, "
                 f"{len(nightly['derived'])} derived, "
                 f"{len(nightly['from_raw_events'])} read from raw events"
                 + (":" if nightly["from_raw_events"] else "")]
        lines += [f"  {raw['tag']}: {raw['reason']}" for raw in nightly["from_raw_events"]]
        console = common.stdout_console()
        for line in lines:
            console.print(line, markup=False, highlight=False)


@rules_app.command("test")
def test(ctx: typer.Context, json_out: common.Json = False) -> None:
    """Run the fixtures in rules/tests/*.yaml against an in-memory workspace.
    Exit 1 when an expectation fails (with a diff), 2 when rules or fixtures are invalid."""

    s = common.settings(ctx)
    result = common.run(ctx, lambda: _problems_as_value(lambda: api.rules_test(s.rules)))
    if isinstance(result, RuleError):
        _report_rule_error(ctx, result)
    if json_out and result["ok"]:
        common.print_json(result)
    elif not json_out:
        _print_test_result(result)
    if not result["ok"]:  # with --json the result is part of the failure document
        common.fail(ctx, DataCheckFailed(nothing_checked(result) or (
            f"rules test: {result['failed']} of {result['checks']} expectations failed")),
                    details=result)


def _print_test_result(result: dict) -> None:
    """Plain lines (no wrapping): file:line stays greppable and clickable; a control
    character of a case name or person id as its sign (`--json` has them as they are)."""
    for failure in result["failures"]:
        output.write_stdout(f"FAIL {output.one_line(failure['message'])}\n")
    if nothing_checked(result):  # no count: the error says why
        return
    verdict = "ok" if result["ok"] else f"{result['failed']} failed"
    output.write_stdout(f"rules test {verdict}: {result['passed']}/{result['checks']} "
                     f"expectations passed in {result['cases']} cases from "
                     f"{len(result['files'])} files\n")


def _problems_as_value(action):
    """Rule problems are this command's normal output: return them instead of raising."""

    try:
        return action()
    except RuleError as exc:
        return exc


def _report_rule_error(ctx: typer.Context, exc: RuleError) -> NoReturn:
    """One `error:` line per problem; with --json {"ok": false, "problems": [...]} in the
    failure document; exit 2."""
    for loc, message in exc.problems:
        common.error(f"{loc}: {message}" if loc else message)
    common.fail(ctx, exc, details={"ok": False, "problems": common.problem_list(exc)},
                echo=False)
