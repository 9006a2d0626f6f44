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

from leadctl.errors import Location, RuleError

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
        from leadctl.tagging.model import PERSON_FIELDS

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
    from leadctl.tagging.check import check_tags_against_data
    from leadctl.tagging.parse import load_tag_rules, tags_path

    ctx.files.append(str(tags_path(ctx.rules_dir)))
    rules = load_tag_rules(ctx.rules_dir)  # RuleError: the caller collects its problems
    ctx.loaded["tags"] = rules
    if ctx.ws is None:
        return []
    problems, warnings = check_tags_against_data(ctx.ws, rules)
    ctx.warnings.extend(warnings)
    return problems
