"""`leadctl identity …`: identity stewardship — overrides (link / unlink), suggested
matches (suggest / accept / reject), why / why-not, shared-value suspects and ownership
conflicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadctl import api
from leadctl.cli import common, output
from leadctl.identity.overrides_file import entry_text
from leadctl.identity.suggest import DEFAULT_MIN_SCORE
from leadctl.identity.suspects import DEFAULT_MIN_DISTINCT

identity_app = typer.Typer(
    help="Identity stewardship: why two leads are (not) one person, suggested matches, "
    "overrides that survive rebuilds, shared-value suspects, ownership conflicts.",
    no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")


# -- suggested matches, why / why not, suspects -----------------------------------------------

_PLAIN = {"markup": False, "highlight": False, "soft_wrap": True}  # text as is


MinScore = Annotated[float, typer.Option(
    "--min-score", help="List suggestions scoring at least S (0 to 1).")]


def _score_option(option: str, value: float | None) -> float | None:
    return None if value is None else common.check_share(option, value)


@identity_app.command("suggest")
def suggest(
    ctx: typer.Context,
    min_score: MinScore = DEFAULT_MIN_SCORE,
    limit: Annotated[int | None, typer.Option(
        "--limit", help="Show at most N pairs [default: all].", show_default=False)] = None,
    reveal: common.Reveal = False,
    json_out: common.Json = False,
) -> None:
    """Pairs of persons that share no linking value but are probably one person (a phone
    one digit away and the same name, an e-mail domain typo, a device id written
    differently, an ID card with the same birth date and sex and the same name), with the
    evidence and a score. Accept with `identity accept A:B`, reject with `identity reject`."""
    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.identity_suggest(
        s.db, s.rules, common.check_share("--min-score", min_score),
        common.check_count("--limit", limit), reveal))
    if json_out:
        common.print_json(result)
        return
    result = output.one_line_values(result)
    rows = [[f"{x['a']}:{x['b']}", f"{x['score']:.2f}", x.get("name") or "",
             [_evidence_line(e) for e in x["evidence"]]] for x in result["suggestions"]]
    title = (f"{result['total']} suggested match(es) scoring >= {min_score:g}"
             + (f", first {len(rows)}" if len(rows) < result["total"] else ""))
    common.stdout_console(piped_width=140).print(common.table(
        title, ["pair", "score", "name", "evidence"], rows, right=("score",), drop=("name",)))
    reviewed = result["reviewed"]
    if any(reviewed.values()):
        common.stderr_console().print(
            f"reviewed already (overrides, not suggested): {reviewed['must_link']} pair(s) "
            f"accepted, {reviewed['cannot_link']} rejected", **_PLAIN)


def _evidence_line(e: dict) -> str:
    return (f"{e['kind']} ({e['detail']}, {e['weight']:g}): {e['a']['source']}/"
            f"{e['a']['lead_id']} {e['a']['value']} ~ {e['b']['source']}/{e['b']['lead_id']} "
            f"{e['b']['value']}")


Pairs = Annotated[list[str] | None, typer.Argument(
    help="Pairs as `suggest` prints them: PERSON_A:PERSON_B.", show_default=False)]
Reason = Annotated[str | None, typer.Option(
    "--reason", help="Why (written in the override) [default: the suggestion's evidence].",
    show_default=False)]


@identity_app.command("accept")
def accept(
    ctx: typer.Context,
    pairs: Pairs = None,
    all_above: Annotated[float | None, typer.Option(
        "--all-above", help="Accept every open suggestion scoring >= S.",
        show_default=False)] = None,
    reason: Reason = None,
    json_out: common.Json = False,
) -> None:
    """Turn suggested matches into must_link overrides (rules/identity_overrides.yaml);
    the next `leadctl resolve` merges them."""
    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.identity_accept(
        s.db, s.rules, pairs or [], _score_option("--all-above", all_above),
        common.check_text("--reason", reason)))
    _show_review(result, json_out)


@identity_app.command("reject")
def reject(
    ctx: typer.Context,
    pairs: Pairs = None,
    reason: Reason = None,
    json_out: common.Json = False,
) -> None:
    """Turn suggested matches into cannot_link overrides: never suggested (or merged)
    again."""
    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.identity_reject(
        s.db, s.rules, pairs or [], common.check_text("--reason", reason)))
    _show_review(result, json_out)


def _show_review(result: dict, json_out: bool) -> None:
    if json_out:
        common.print_json(result)
        return
    result = output.one_line_values(result)
    out = common.stdout_console(piped_width=140)
    for item in result["written"]:
        leads = " + ".join(f"{lead['source']}/{lead['lead_id']}" for lead in item["leads"])
        out.print(f"{result['kind']} {item['a']}:{item['b']} (score {item['score']:.2f}): "
                  f"{leads}", **_PLAIN)
    note = (f"wrote {len(result['written'])} override(s) to {result['file']}; the next "
            "`leadctl resolve` applies them" if result["written"] else "nothing to write")
    common.stderr_console().print(note, **_PLAIN)


@identity_app.command("why")
def why(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="A lead id, person id or any portrait query.")],
    b: Annotated[str, typer.Argument(help="Another one.")],
    reveal: common.Reveal = False,
    json_out: common.Json = False,
) -> None:
    """Why A and B are one person (the shortest chain of shared values) or why not (no
    shared value, or the value is blocked, capped, invalid, or cut by a cannot-link
    override); plus any suggested match between them. Exit 0 either way."""
    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.identity_why(s.db, s.rules, a, b, reveal))
    if json_out:
        common.print_json(result)
        return
    result = output.one_line_values(result)
    out = common.stdout_console(piped_width=140)
    ends = [f"{x['source']}/{x['lead_id']} ({x['person_id']})" for x in (result["a"], result["b"])]
    head = "LINKED" if result["linked"] else "NOT LINKED"
    out.print(f"{head}: {ends[0]} and {ends[1]}: {result['message']}", **_PLAIN)
    for end in (result["a"], result["b"]):
        if end["chosen"] != "lead":
            out.print(f"  {end['query']!r} → {end['source']}/{end['lead_id']}, the "
                      f"{end['chosen']}", **_PLAIN)
    if result["path"]:
        out.print(common.table("path", ["#", "lead", "created", "via"], [
            [str(i), f"{p['source']}/{p['lead_id']}", str(p["created_at"] or ""),
             "" if p["via"] is None else f"{p['via']['type']} {p['via']['value']}"]
            for i, p in enumerate(result["path"])]))
    if result.get("values"):
        out.print(common.table("values both carry", ["type", "value", "status", "why",
                                                     "records", "leads"], [
            [v["type"], v["value"], v["status"], v["reason"] or "", str(v["records"] or ""),
             f"{v['a']['source']}/{v['a']['lead_id']} · {v['b']['source']}/{v['b']['lead_id']}"]
            for v in result["values"]], drop=("leads",)))
    for o in result.get("overrides") or []:
        out.print(f"cannot_link override ({o['file']}): {o['reason']}", **_PLAIN)
    suggestion = result.get("suggestion")
    if suggestion:
        reviewed = suggestion.get("reviewed")  # as `suggest` and `accept` see it
        head = (f"reviewed match ({reviewed}: not suggested again)" if reviewed
                else "suggested match")
        out.print(f"{head} {suggestion['a']}:{suggestion['b']} score "
                  f"{suggestion['score']:.2f}:", **_PLAIN)
        for e in suggestion["evidence"]:
            out.print("  " + _evidence_line(e), **_PLAIN)


@identity_app.command("suspects")
def suspects(
    ctx: typer.Context,
    min_distinct: Annotated[int, typer.Option(
        "--min-distinct", help="List values carried by at least N different names or "
        "cities.")] = DEFAULT_MIN_DISTINCT,
    limit: Annotated[int | None, typer.Option(
        "--limit", help="Show at most N values [default: all].", show_default=False)] = None,
    out: Annotated[Path | None, common.file_option(
        "-o", "--output", help="Also write them (all, real values) as a blocklist fragment "
        "to review and paste into rules/identity.yaml.", show_default=False)] = None,
    reveal: common.Reveal = False,
    json_out: common.Json = False,
) -> None:
    """Linking identifier values shared by unusually many different names or cities (a
    shop's phone, an office device, an agent's own number), below the cap, ranked."""
    s = common.settings(ctx)
    result = common.run(ctx, lambda: api.identity_suspects(
        s.db, common.check_count("--min-distinct", min_distinct),
        common.check_count("--limit", limit), reveal, out))
    if json_out:
        common.print_json(result)
        return
    rows = [[x["type"], x["value"], str(x["records"]), str(x["names"]), str(x["cities"]),
             str(x["score"]), ", ".join(x["name_list"]), ", ".join(x["city_list"])]
            for x in result["suspects"]]
    common.stdout_console(piped_width=140).print(common.table(
        f"{result['total']} suspect value(s) (>= {min_distinct} names or cities)"
        + (f", first {len(rows)}" if len(rows) < result["total"] else ""),
        ["type", "value", "records", "names", "cities", "score", "name list", "city list"],
        rows, right=("records", "names", "cities", "score"),
        drop=("name list", "city list")))
    if result["file"]:
        common.stderr_console().print(f"wrote the blocklist fragment to {result['file']} "
                                      "(real values: review it before pasting)",
                                      **_PLAIN)


@identity_app.command("conflicts")
def conflicts(ctx: typer.Context, json_out: common.Json = False) -> None:
    """Ownership conflicts: an active sale lock an identity merge did not keep (the merged
    person kept another rep's state, by on_merge: keep; by default the earlier sale); a
    manager decides. Exit 0 (also when there are none)."""

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
        f"{len(rows)} ownership conflict(s): a merge kept one state, not the other lock",
        ["person", "kept rep", "sold", "locked until", "other rep", "other sold",
         "other locked until", "merged ids", "run"],
        [[c["person_id"], c["kept"]["rep"], c["kept"]["sold_at"], c["kept"]["locked_until"],
          c["other"]["rep"], c["other"]["sold_at"], c["other"]["locked_until"],
          ", ".join(c["old_person_ids"]), c["run_id"]] for c in rows],
        drop=("merged ids", "other locked until", "run")))
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
        common.check_utf8("--reason", reason)  # free text (escaped in the file), but storable
        return write(s.db, s.rules, a, b, reason, by)

    result = common.run(ctx, action)
    if json_out:
        common.print_json({"written": result["written"], "file": result["file"]})
    else:
        output.write_stdout(entry_text(result["written"]))
    entry = output.one_line_values(result["written"])
    names = " and ".join(f"{x['source']}/{x['lead_id']}" for x in entry["leads"])
    if result["same_person"] and entry["kind"] == "must_link":
        note = f"{names} are already one person; the link keeps them so"
    elif not result["same_person"] and entry["kind"] == "cannot_link":
        note = f"{names} are not one person now; the unlink keeps them apart"
    else:
        note = f"{entry['kind']} of {names}"
    common.stderr_console().print(f"{note}: appended to {output.one_line(result['file'])}; "
                                  "applied by the next `leadctl resolve`", **_PLAIN)
