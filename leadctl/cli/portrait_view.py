"""Portrait rendering without typer, shared by the `portrait` command and the fast path
in `leadctl.cli.main` (support staff's lookup must start quickly)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

from leadctl.cli import output
from leadctl.cli.output import value_text
from leadctl.identity.lookup import AmbiguousQuery
from leadctl.views.asof import describe
from leadctl.views.portrait import portrait

SCREEN_LINES = 40
SCREEN_WIDTH = 100
MAX_LEAD_ROWS = 5
MAX_HISTORY_ROWS = 4
GRADE_STYLE = {"A": "bold green", "B": "bold cyan", "C": "bold yellow", "D": "bold red"}
TONE_STYLE = {"good": "bold green", "mid": "bold yellow", "bad": "bold red"}



def show_portrait(db: Path | None, query: str, reveal: bool, as_of: str | None,
                  json_out: bool) -> None:
    """Look up and print one portrait; raises LeadctlError (NotFound: exit 1)."""
    try:
        result = portrait(db, query, reveal=reveal, as_of=output.parse_as_of(as_of))
    except AmbiguousQuery as exc:
        if not json_out:  # with --json the candidates are part of the failure document
            render_candidates(exc.candidates)
        raise
    if json_out:
        output.print_json(result)
        return
    # piped or captured without $COLUMNS: the designed width, not rich's 80
    console = output.stdout_console(piped_width=SCREEN_WIDTH)
    console.print(render_portrait(result, width=console.width))


def render_candidates(candidates: list[dict]) -> None:
    rows = [[c["person_id"], c["name"], c["phone"], c["city"], c["lead_count"],
             " ".join([", ".join(c["matched_by"]), *c.get("leads", [])])] for c in candidates]
    output.stdout_console().print(output.table(
        "candidates", ["person", "name", "phone", "city", "leads", "matched by"], rows,
        right=("leads",), drop=("city", "matched by")))


# -- rendering (pure: dict → rich renderable) ------------------------------------------------

def _day(value: Any) -> str:
    return "—" if value is None else value_text(value)[:10]


def render_portrait(p: dict, *, width: int = 100, max_lines: int = SCREEN_LINES):
    """The portrait as one rich renderable of at most `max_lines` lines at `width` columns."""
    from rich.console import Group

    # a control character of a lead's value as its sign, a line break too: one screen
    # line per item, whatever the data holds
    p = output.one_line_values(p)
    inner = width - 4  # panel borders and padding
    header = _header(p, inner)
    identity = _identity(p, inner)
    bottom = _bottom(p, inner)
    used = sum(height for _, height in (header, identity, bottom))
    tags = _tags(p, inner, max(max_lines - used, 4))
    return Group(*(part[0] for part in (header, identity, tags, bottom)))


def _panel(body, title: str):
    from rich.panel import Panel

    return Panel(body, title=title, title_align="left", padding=(0, 1))


MIN_SHOWN_CELLS = 10  # an item shortened to fewer cells says too little: it goes in `+N more`


def _flow(items: list, width: int, max_lines: int, *, sep: str = "  ", more: str = "more",
          keep: int = 0):
    """Items (Text) laid out left to right on at most `max_lines` lines of `width` cells;
    what does not fit is summarised as `+N more`. The first `keep` items (the flags a rep
    on the phone must see) are never summarised: on the last line they are shortened to
    fit, and the note is dropped before one of them is cut too short. Returns (Text, lines
    used)."""
    from rich.text import Text

    lines: list[Text] = [Text()]
    start = 0  # the first item on the last line so far
    for index, item in enumerate(items):
        item = item.copy()
        item.truncate(width, overflow="ellipsis")
        line = lines[-1]
        later = len(items) - index - 1
        reserve = len(f"{sep}+{later} {more}") if later and len(lines) == max_lines else 0
        gap = len(sep) if line.cell_len else 0
        if line.cell_len + gap + item.cell_len + reserve > width:
            if len(lines) == max_lines:
                if index < keep:  # with the kept items before it on this line
                    lines[-1] = _squeezed(items[start:keep], len(items) - keep, width, sep,
                                          more)
                    break
                line.append(f"{sep if line.cell_len else ''}+{later + 1} {more}", style="dim")
                break
            lines.append(Text())
            line, start = lines[-1], index
            note = f"{sep}+{later} {more}"
            if len(lines) == max_lines and later and item.cell_len + len(note) > width:
                if index < keep:
                    lines[-1] = _squeezed(items[index:keep], len(items) - keep, width, sep,
                                          more)
                    break
                # shortened rather than folded into the note: the first items are the
                # ones a narrow screen must still show
                if width - len(note) < MIN_SHOWN_CELLS:
                    line.append(f"+{later + 1} {more}", style="dim")
                    break
                item.truncate(width - len(note), overflow="ellipsis")
                line.append_text(item)
                line.append(note, style="dim")
                break
        if line.cell_len:
            line.append(sep)
        line.append_text(item)
    text = Text("\n").join(lines)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text, len(lines)


def _squeezed(kept: list, folded: int, width: int, sep: str, more: str):
    """One line of `width` cells with every item of `kept`, the widest shortened first, and
    `+folded more` after them unless that leaves one of them fewer than MIN_SHOWN_CELLS."""
    from rich.text import Text

    note = f"{sep}+{folded} {more}" if folded else ""
    natural = [item.cell_len for item in kept]
    for tail in dict.fromkeys((note, "")):
        widths = list(natural)
        while sum(widths) + len(sep) * (len(kept) - 1) + len(tail) > width and max(widths) > 1:
            widths[widths.index(max(widths))] -= 1
        if all(w >= min(n, MIN_SHOWN_CELLS) for w, n in zip(widths, natural, strict=True)):
            break
    line = Text()
    for item, cells in zip(kept, widths, strict=True):
        item = item.copy()
        item.truncate(cells, overflow="ellipsis")
        if line.cell_len:
            line.append(sep)
        line.append_text(item)
    line.append(tail, style="dim")
    return line


def _fit_widths(rows: list[list[str]], headers: list[str], caps: list[int], width: int,
                gap: int = 2) -> list[int]:
    """Column widths that fit `width`: natural widths up to their caps, then the widest
    columns give way first."""
    from rich.cells import cell_len

    widths = [min(max([cell_len(h)] + [cell_len(r[i]) for r in rows]), cap)
              for i, (h, cap) in enumerate(zip(headers, caps, strict=True))]
    available = width - gap * (len(widths) - 1)
    while sum(widths) > available and max(widths) > 4:
        widths[widths.index(max(widths))] -= 1
    return widths


# A portrait column needs its widest value up to this many cells, else it is dropped (in the
# table's order) rather than cut to a few letters; above it, values are cut with "…".
USEFUL_WIDTH = 16


def _fixed_table(headers: list[str], rows: list[list[str]], caps: list[int], width: int,
                 drop: tuple[str, ...] = ()):
    """One line per row at `width` cells. Returns (table, the columns dropped)."""
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    needed = [min(max([cell_len(h)] + [cell_len(r[i]) for r in rows]), cap, USEFUL_WIDTH)
              for i, (h, cap) in enumerate(zip(headers, caps, strict=True))]
    kept = output.fit_columns(headers, drop,
                              lambda k: sum(needed[i] for i in k) + 2 * (len(k) - 1) <= width)
    hidden = [h for i, h in enumerate(headers) if i not in kept]
    headers, caps = [headers[i] for i in kept], [caps[i] for i in kept]
    rows = [[r[i] for i in kept] for r in rows]
    widths = _fit_widths(rows, headers, caps, width)
    t = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0),
              header_style="bold dim")
    for header, w in zip(headers, widths, strict=True):
        t.add_column(Text(header[:w]), width=w, no_wrap=True, overflow="ellipsis")
    for row in rows:
        cells = []
        for value, w in zip(row, widths, strict=True):
            cell = Text(value)
            cell.truncate(w, overflow="ellipsis")
            cells.append(cell)
        t.add_row(*cells)
    return t, hidden


def _hidden_note(hidden: list[str], width: int) -> tuple:
    """The `(N columns hidden at W columns: …; use --json)` note under a table `width`
    cells wide (the screen's less the panel's 4). Returns (Text, lines used)."""
    return _note(output.hidden_note(hidden, width + 4), width)


def _note(text: str, width: int) -> tuple:
    """A dim note line of a panel `width` cells wide, folded as other tables' notes are,
    never cut; the lines it takes count in the screen's line budget. (Text, lines used)."""
    from rich.console import Console
    from rich.text import Text

    note = Text(text, style="dim", overflow="fold")
    measure = Console(width=width, file=StringIO(), color_system=None)
    return note, len(note.wrap(measure, width))


def _header(p: dict, width: int) -> tuple:
    from rich.text import Text

    who = [Text(p["name"] or "(no name)", style="bold")]
    for label, key, style in (("☎ ", "phone", "bold"), ("✉ ", "email", ""), ("wx ", "wechat", ""),
                              ("id ", "id_card", ""), ("dev ", "device_id", "")):
        if p.get(key):
            who.append(Text.assemble((label, "dim"), (str(p[key]), style)))
    if _place(p):
        who.append(Text(_place(p)))
    who_text, who_lines = _flow(who, width, 2, sep="   ")
    grade = p.get("grade")
    state = [Text.assemble(("grade ", "dim"), (grade or "—", GRADE_STYLE.get(grade or "", "bold")),
                           ("  score ", "dim"), (value_text(p.get("score")), "bold"))]
    # the flags a rep on the phone must see come first: never folded into "+N more"
    if p.get("locked"):
        state.append(Text(f"LOCKED until {_day(p['locked_until'])}", style="bold red"))
    if p.get("dormant"):
        state.append(Text("DORMANT", style="bold magenta"))
    for label in ("pool", "owner", "status"):
        state.append(Text.assemble((f"{label} ", "dim"), (p.get(label) or "—", "bold")))
    if p.get("status_since"):
        state.append(Text(f"since {_day(p['status_since'])}", style="dim"))
    if p.get("routing_reason"):
        state.append(Text(f"routed: {p['routing_reason']}", style="dim"))
    state_text, state_lines = _flow(state, width, 2, sep="   ",
                                    keep=1 + bool(p.get("locked")) + bool(p.get("dormant")))
    title = f"[bold]{p['person_id']}[/]  [dim]matched by {', '.join(p['query']['matched_by'])}"
    lines = [who_text, state_text]
    as_of = describe(p)
    if Text.from_markup(f"{title}  · {as_of}").cell_len > width - 2:
        lines.insert(0, Text(as_of, style="bold"))  # a title is cut, not wrapped: a line
    else:
        title += f"  [/][bold]· {as_of}[/]"
    if p.get("masked") is False:
        title += "  · PII revealed"
    return _panel(Text("\n").join(lines), title), len(lines) + who_lines + state_lines


def _place(p: dict) -> str:
    return " ".join(dict.fromkeys(x for x in (p.get("province"), p.get("city")) if x))


def _identity(p: dict, width: int) -> tuple:
    from rich.console import Group
    from rich.text import Text

    ids = []
    for index, ident in enumerate(p["identifiers"]):
        first_of_type = index == 0 or p["identifiers"][index - 1]["type"] != ident["type"]
        ids.append(Text.assemble((f"{ident['type']} " if first_of_type else "", "dim"),
                                 str(ident["value"])))
    ids_text, ids_lines = _flow(ids or [Text("no identifiers", style="dim")], width, 2,
                                sep="  ")
    parts: list = [ids_text]
    height = 2 + ids_lines
    leads = p["leads"][:MAX_LEAD_ROWS]
    if leads:
        rows = []
        for lead in leads:
            utm = "/".join(x or "·" for x in (lead.get("utm_source"), lead.get("utm_medium"),
                                              lead.get("utm_campaign")))
            rows.append([lead["lead_id"], lead.get("source") or "—", lead.get("channel") or "—",
                         utm if utm != "·/·/·" else "—", value_text(lead.get("created_at"))])
        table, hidden = _fixed_table(["lead", "source", "channel", "utm source/medium/campaign",
                                      "created"], rows, [24, 14, 12, 60, 16], width,
                                     drop=("utm source/medium/campaign", "channel"))
        parts.append(table)
        height += 1 + len(leads)
        if hidden:
            note, lines = _hidden_note(hidden, width)
            parts.append(note)
            height += lines
    more = p["lead_count"] - len(leads)
    if more > 0:
        note, lines = _note(f"+{more} more leads (leadctl export leads, or --json)", width)
        parts.append(note)
        height += lines
    title = (f"[bold]identity[/]  {p['lead_count']} lead(s)  first {_day(p.get('first_seen'))}"
             f"  last {_day(p.get('last_seen'))}")
    return _panel(Group(*parts), title), height


def _tag_item(entry: dict):
    from rich.text import Text

    item = Text(entry["tag"] + " ", style="dim")
    item.append(value_text(entry["value"]), style=TONE_STYLE.get(
        entry.get("tone") or "", "bold" if entry["key"] else ""))
    if entry.get("changed"):
        previous = entry.get("previous")
        item.append(" ▲" + (f" was {value_text(previous)}" if previous is not None else " new"),
                    style="yellow")
    return item


def _tags(p: dict, width: int, budget: int) -> tuple:
    """One row per category; tags flow within it. `budget` lines including the border."""
    from rich.table import Table
    from rich.text import Text

    groups = p["tag_groups"]
    if not groups:
        return _panel(Text("no tags yet (run `leadctl tag`)", style="dim"), "[bold]tags"), 3
    label_width = min(max(len(g["category"]) for g in groups), 14)
    cell = width - label_width - 2
    available = max(budget - 2, 1)
    # A category a line while they fit (else the last line says how many more there are);
    # spare lines go to the categories that need them, in order.
    needs = [_flow([_tag_item(t) for t in g["tags"]], cell, 99)[1] for g in groups]
    shown_groups = groups if len(groups) <= available else groups[:available - 1]
    lines = [1] * len(shown_groups)
    spare = available - len(shown_groups) - (len(shown_groups) < len(groups))  # the … row
    while spare > 0 and any(n > used for n, used in zip(needs, lines, strict=False)):
        for index in range(len(shown_groups)):  # one more line each, in turn
            if spare and needs[index] > lines[index]:
                lines[index] += 1
                spare -= 1
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(style="bold", no_wrap=True, width=label_width, overflow="ellipsis")
    grid.add_column(no_wrap=True, overflow="ellipsis")
    for group, max_lines in zip(shown_groups, lines, strict=True):
        text, _ = _flow([_tag_item(t) for t in group["tags"]], cell, max_lines)
        grid.add_row(group["category"], text)
    if len(shown_groups) < len(groups):
        hidden = sum(len(g["tags"]) for g in groups[len(shown_groups):])
        grid.add_row("…", Text(f"+{hidden} tags in {len(groups) - len(shown_groups)} more "
                               "categories (--json)", style="dim"))
    changed = sum(1 for g in groups for t in g["tags"] if t.get("changed"))
    title = f"[bold]tags[/]  as of {_day(p.get('tags_as_of'))}"
    if "tags" in (p.get("as_of_differs") or []):
        title += " [yellow](stored)[/]"
    if changed:
        title += f"  [yellow]▲ {changed} changed since the previous run"
    return _panel(grid, title), 2 + sum(lines) + (len(shown_groups) < len(groups))


def recorded_as(why: str, row: dict) -> str:
    """A log row written under an id a merge later retired says so."""
    return f"{why} (as {row['recorded_as']})" if row.get("recorded_as") else why


def _bottom(p: dict, width: int) -> tuple:
    """Activity (one flowing line) and the latest assignment log rows, in one panel."""
    from rich.console import Group
    from rich.text import Text

    events = [Text.assemble((e["event_type"], "bold"), f" {e['last_30d']}",
                            (f" in 30d · {e['total']} all · last {_day(e['last_at'])}", "dim"))
              for e in p["activity"]["events"]]
    empty = p["activity"].get("note") or "no events"
    activity, activity_lines = _flow(
        events or [Text(empty, style="dim")], width, 2, sep="   ", more="event types")
    parts: list = [activity]
    height = 2 + activity_lines
    history = p["history"][:MAX_HISTORY_ROWS]
    older = 0
    if len(p["history"]) > len(history):  # the last line says how many more --json lists
        history = history[:-1]
        older = len(p["history"]) - len(history)
    if history:
        rows = [[_day(h.get("as_of") or h.get("logged_at")),
                 _change(h.get("old_pool"), h.get("new_pool")),
                 _change(h.get("old_owner"), h.get("new_owner")),
                 _change(h.get("old_status"), h.get("new_status")),
                 recorded_as(h.get("reason") or h.get("rule") or "—", h)] for h in history]
        table, hidden = _fixed_table(["when", "pool", "owner", "status", "why"], rows,
                                     [10, 24, 20, 26, 60], width, drop=("status", "owner"))
        parts.append(table)
        height += 1 + len(history)
        if older:
            parts.append(Text(f"+{older} older in --json", style="dim"))
            height += 1
        if hidden:
            note, lines = _hidden_note(hidden, width)
            parts.append(note)
            height += lines
    else:
        parts.append(Text("no assignments yet", style="dim"))
        height += 1
    title = (f"[bold]activity[/] as of {p['as_of']} (30d = the 30 whole days before)  ·  "
             "[bold]lifecycle[/] (latest first)")
    return _panel(Group(*parts), title), height


def _change(old: Any, new: Any) -> str:
    if old == new or old is None:
        return value_text(new)
    return f"{value_text(old)}→{value_text(new)}"
