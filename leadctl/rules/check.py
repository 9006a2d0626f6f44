"""`rules check`: parse → validate semantics → check against the data present.

Every command that uses rules calls `check_rules` first and refuses to run when it
raises. Checkers run in order and share a `CheckContext`: the tag checker puts the
parsed `TagRules` in `ctx.loaded["tags"]` so later checkers (scoring, routing) can
validate their expressions against `ctx.fields()`.

To add a checker: append "module:function" to `CHECKERS` (imported lazily) or call
`register_checker(fn)`. A checker takes the context and returns a list of problems
`(Location | None, message)` (or raises RuleError); it may append to `ctx.warnings`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError, first_line

Problems = list[tuple[Location | None, str]]
Checker = Callable[["CheckContext"], Problems]

CHECKERS: list[str] = [
    "leadctl.rules.check:check_tags",
    "leadctl.scoring.parse:check",
    "leadctl.routing.parse:check",
    "leadctl.identity.check:check_identity",
    "leadctl.identity.check:check_sources",
]
_REGISTERED: list[Checker] = []


@dataclass
class CheckContext:
    rules_dir: Path
    ws: Any = None  # a Workspace to check against the data present, or None
    loaded: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, str]:
        """person_features fields for expressions: attributes + tags that parsed."""
        from leadctl.rules.tags import PERSON_FIELDS

        tags = self.loaded.get("tags")
        return tags.fields() if tags is not None else dict(PERSON_FIELDS)

    def summary(self) -> dict:
        tags = self.loaded.get("tags")
        return {"ok": True, "rules_dir": str(self.rules_dir), "files": self.files,
                "tags": len(tags.tags) if tags is not None else 0,
                "warnings": self.warnings}


def register_checker(checker: Checker) -> None:
    if checker not in _REGISTERED:
        _REGISTERED.append(checker)


def _checkers() -> list[Checker]:
    found: list[Checker] = []
    for spec in CHECKERS:
        module, _, name = spec.partition(":")
        found.append(getattr(importlib.import_module(module), name))
    return found + [c for c in _REGISTERED if c not in found]


def check_rules(rules_dir: Path | str | None, ws: Any = None) -> CheckContext:
    """Run every checker; raise RuleError with ALL problems, or return the context
    (parsed rules in `.loaded`, non-fatal findings in `.warnings`)."""
    ctx = CheckContext(Path(rules_dir or "rules"), ws)
    if not ctx.rules_dir.is_dir():
        raise RuleError([(None, f"rules directory {ctx.rules_dir} not found (pass --rules)")])
    problems: Problems = []
    for checker in _checkers():
        try:
            problems.extend(checker(ctx) or [])
        except RuleError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleError(_ordered(problems))
    return ctx


def _ordered(problems: Problems) -> Problems:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p[0].file, p[0].line, p[0].col) if p[0] else ("", 0, 0))


# --------------------------------------------------------------------------- tags


def check_tags(ctx: CheckContext) -> Problems:
    from leadctl.rules.tags import load_tag_rules, tags_path

    path = tags_path(ctx.rules_dir)
    ctx.files.append(str(path))
    rules = load_tag_rules(ctx.rules_dir)  # RuleError: the caller collects its problems
    ctx.loaded["tags"] = rules
    if ctx.ws is None:
        return []
    return check_tags_against_data(ctx, rules)


def check_tags_against_data(ctx: CheckContext, rules) -> Problems:
    """Bind the generated SQL against the workspace (tables, columns, types) without
    running it; warn about event types the rules use that the data does not have."""
    import datetime as dt

    from leadctl.rules.tags import features_select_sql, literal

    problems: Problems = []
    try:
        ctx.ws.execute("EXPLAIN " + features_select_sql(rules, dt.date.today()))
    except RuleError as exc:
        problems.extend(exc.problems)
    except Exception as exc:  # a binder error: the data does not fit the rules
        problems.append((Location(str(rules.path), 1, 1),
                         f"tags do not fit the workspace data: {first_line(exc)}"))
        return problems
    used: dict[str, Location | None] = {}
    for tag in rules.tags:
        for event in tag.events:
            used.setdefault(event, tag.loc)
    if used and ctx.ws.scalar("SELECT count(*) > 0 FROM (SELECT 1 FROM events LIMIT 1)"):
        present = {r["event_type"] for r in ctx.ws.rows(
            "SELECT DISTINCT event_type FROM events WHERE event_type IN ("
            + ", ".join(literal(e) for e in used) + ")")}
        for event, loc in used.items():
            if event not in present:
                ctx.warnings.append(f"{loc}: no '{event}' events in the workspace yet")
    return problems
