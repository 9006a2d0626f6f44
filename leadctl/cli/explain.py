"""`leadctl explain LEAD`: identity links, tag rules, score breakdown, routing decision."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from leadctl import api
from leadctl.cli import common
from leadctl.cli.output import one_line_values, value_text
from leadctl.cli.portrait_view import recorded_as, render_candidates
from leadctl.identity.lookup import AmbiguousQuery
from leadctl.views.asof import describe


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)


def explain(
    ctx: typer.Context,
    lead: Annotated[str, typer.Argument(help="Lead id (or any portrait query: phone, email, "
                    "WeChat id, ID card, person id).")],
    reveal: common.Reveal = False,
    as_of: common.ViewAsOf = None,
    json_out: common.Json = False,
) -> None:
    """Why this lead merged with whom, why each tag value, how the score adds up, why
    this pool. Parts not computed yet are shown as such."""

    s = common.settings(ctx)

    def action():
        try:
            return api.explain(s.db, lead, reveal=reveal, rules_dir=s.rules,
                               as_of=common.parse_as_of(as_of))
        except AmbiguousQuery as exc:
            if not json_out:  # with --json the candidates are in the failure document
                render_candidates(exc.candidates)
            raise

    result = common.run(ctx, action)
    if json_out:
        common.print_json(result)
        return
    console = common.stdout_console(piped_width=120)  # piped: room for rule texts
    for part in render(result):
        console.print(part)


def render(r: dict) -> list:
    from rich.text import Text

    # a control character of a value (a tab, a BEL, a line break in a source name) as its
    # sign before rich sees it (it drops a BEL, expands a tab): one screen line per item
    r = one_line_values(r)
    title = Text.assemble(("explain ", "bold"), (r["person_id"], "bold cyan"),
                          (f"  matched by {', '.join(r['query']['matched_by'])}", "dim"),
                          f"  · {describe(r)}")
    return [title, _panel("identity", r["identity"], _identity),
            _panel("tags", r["tags"], _tags), _panel("score", r["score"], _score),
            _panel("routing", r["routing"], _routing)]


def _panel(name: str, part: dict, body):
    from rich.panel import Panel
    from rich.text import Text

    content = body(part) if part.get("available") else Text(part.get("note") or "not available",
                                                            style="dim")
    return Panel(content, title=f"[bold]{name}", title_align="left", padding=(0, 1))


def _table(columns: list[str], rows: list[list[Any]], drop: tuple[str, ...] = ()):
    return common.table(None, columns, [[value_text(v) for v in row] for row in rows], drop=drop,
                        compact=True)


def _identity(part: dict):
    from rich.console import Group
    from rich.text import Text

    if part.get("source") == "identity.explain" and "identifiers" in part:
        return _identity_module(part)
    if part.get("source") != "lead_identifiers":
        return _generic(part)
    parts: list = [Text(f"{len(part['leads'])} lead(s): " + ", ".join(
        f"{lead['source']}/{lead['lead_id']}" for lead in part["leads"]))]
    if part["links"]:
        parts.append(Text("linked by shared values:", style="bold"))
        parts.append(_table(["type", "value", "leads"], [
            [link["type"], link["value"], ", ".join(link["leads"])] for link in part["links"]]))
    if part["not_linking"]:
        parts.append(Text("values that do not link:", style="bold"))
        parts.append(_table(["type", "value", "status", "leads"], [
            [v["type"], v["value"], v["status"], ", ".join(v["leads"])]
            for v in part["not_linking"]]))
    return Group(*parts)


def _identity_module(part: dict):
    """leadctl.identity.explain output: the lead's values, what each joined, the paths."""
    from rich.console import Group
    from rich.text import Text

    def lead_name(lead: dict) -> str:
        return f"{lead['source']}/{lead['lead_id']}"

    lead = part.get("lead") or {}
    created = value_text(lead.get("created_at"))
    parts: list = [Text(f"lead {lead_name(lead)} created {created} is one "
                        f"of {part.get('person_leads')} lead(s) of {part.get('person_id')}")]
    rows = [[i["id_type"], i["value"] or i["raw_value"], i["status"], i.get("records"),
             i.get("reason") or "", ", ".join(lead_name(x) for x in i.get("shared_with") or [])]
            for i in part.get("identifiers") or []]
    if rows:
        parts.append(Text("its identifier values:", style="bold"))
        parts.append(_table(["type", "value", "status", "records", "why not linking",
                             "shared with"], rows, drop=("records", "why not linking")))
    paths = part.get("paths") or []
    if paths:
        parts.append(Text("how each other lead is reached:", style="bold"))
        parts.append(_table(["lead", "via"], [
            [p["lead"], " → ".join(f"{h['id_type']} {h['value']} ({h['to']})" for h in p["hops"])]
            for p in paths]))
    overrides = part.get("overrides") or []
    if overrides:
        parts.append(Text("identity overrides naming it:", style="bold"))
        parts.append(_table(["kind", "with", "reason", "where"], [
            [o["kind"], ", ".join(o["leads"] or []), o["reason"], o["location"]]
            for o in overrides], drop=("where",)))
    return Group(*parts)


def _generic(part: dict):
    """Any other identity explanation: its fields as lines (nested values as JSON)."""
    from rich.text import Text

    lines = []
    for key, value in part.items():
        if key in ("available", "source"):
            continue
        shown = value if isinstance(value, str) else json.dumps(
            value, ensure_ascii=False, default=str)
        lines.append(f"{key}: {shown}")
    return Text("\n".join(lines))


def _at(where: str | None) -> str:
    """`rules/tags.yaml:10:5` → `tags.yaml:10:5`: the file name is enough on screen."""
    return where.replace("\\", "/").rsplit("/", 1)[-1] if where else ""


def _tags(part: dict):
    from rich.console import Group
    from rich.text import Text

    rows = [[t["tag"], t["value"], t.get("kind"), (t.get("rule") or {}).get("text") or
             t.get("description"), _at((t.get("rule") or {}).get("at"))] for t in part["values"]]
    table = _table(["tag", "value", "kind", "rule", "defined at"], rows,
                   drop=("defined at", "kind"))
    return Group(table, Text(part["note"], style="yellow")) if part.get("note") else table


def _score(part: dict):
    from rich.console import Group
    from rich.text import Text

    def signed(points) -> str:  # +1234571.1, -2.5: every digit the sum adds up from
        shown = value_text(float(points))
        return shown if shown.startswith("-") else "+" + shown

    rows = [[line["rule"], signed(line["points"]), line.get("when") or line.get(
        "points_expr") or "", _at(line.get("at"))] for line in part["breakdown"]]
    head = Text.assemble(("score ", "dim"), (value_text(part["score"]), "bold"),
                         ("  grade ", "dim"), (part.get("grade") or "—", "bold"),
                         ("  = sum of the rules below: ", "dim"), value_text(part["points_total"]))
    note = [Text(part["note"], style="yellow")] if part.get("note") else []
    return Group(head, _table(["rule", "points", "when", "defined at"], rows,
                              drop=("defined at",)), *note) if rows \
        else Group(head, Text("no rule gave points", style="dim"), *note)


def _routing(part: dict):
    from rich.console import Group
    from rich.text import Text

    state = part.get("state") or {}
    lines: list = [Text.assemble(
        ("pool ", "dim"), (state.get("pool") or "—", "bold"), ("  owner ", "dim"),
        (state.get("owner") or "—", "bold"), ("  status ", "dim"), state.get("status") or "—",
        ("  why ", "dim"), state.get("reason") or "—")]
    if state.get("locked"):
        lines.append(Text(f"locked until {value_text(state['locked_until'])} (sale)", style="red"))
    route = part.get("route")
    if route:
        lines.append(Text(f"route {route['route']} ({_at(route.get('at'))}): when "
                          f"{route.get('when') or 'always'} → pool {route['pool']}"))
    if part["log"]:
        lines.append(_table(["when", "pool", "owner", "status", "rule", "reason"], drop=(
            "rule", "status"), rows=[
            [h.get("as_of") or h.get("logged_at"), _change(h["old_pool"], h["new_pool"]),
             _change(h["old_owner"], h["new_owner"]), _change(h["old_status"], h["new_status"]),
             h["rule"], recorded_as(h["reason"], h)] for h in part["log"]]))
    if part.get("note"):
        lines.append(Text(part["note"], style="yellow"))
    return Group(*lines)


def _change(old: Any, new: Any) -> str:
    return value_text(new) if old == new or old is None else f"{value_text(old)}→{value_text(new)}"
