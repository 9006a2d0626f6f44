"""Located rule text and problems: the one toolkit every rule file's parser uses.

- `Problems`: a list of (Location | None, message); `sorted_problems` orders and dedups it.
- `RuleDoc`: collects the problems of one file and answers "where is this?" for the
  loader's nodes (YDict/YList from `rules.load`), falling back to the file's start
  for nodes built in memory.
- `LocatedText`: an expression from a rule file, and where each of its characters is.
- `compile_located`: compile a `LocatedText` with errors at the offending character.
- `Fields`: the names an expression may use, and the names declared but broken.
- `read_yaml` / `parse_file` (and `RuleDoc.load`): a file whose dates or integers YAML
  cannot build (2026-02-30) is read on, those problems reported with all the others.

One typo, one error: a name whose declaration has a problem (a tag of an unknown kind,
a pool with a bad name, an event attribute of an unknown type…) is reported once, where
it is declared. The parser records it as *broken* (`Fields.broken`, or the `broken` set
given to `RuleDoc.named_items`), and whatever only refers to it reports nothing of its
own: `compile_located` drops an expression's "unknown field" for a broken name, and a
reference to a broken pool is not an "unknown pool". Once the root problem is fixed, the
next `rules check` checks those references again. Every "unknown X" message names the
near miss (`did_you_mean`, `one_of` from `rules.hints`, re-exported here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError
from leadctl.rules.bounds import plain_text, read_as
from leadctl.rules.expr import CompiledExpr, ExprError, compile_expr
from leadctl.rules.hints import (  # the parsers' one import: did_you_mean etc. re-exported
    did_you_mean,  # noqa: F401
    mistyped_keys,  # noqa: F401
    named_in,  # noqa: F401
    near_miss,
    one_of,  # noqa: F401
)
from leadctl.rules.load import UnreadableValues, load_yaml

Problems = list[tuple[Location | None, str]]

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def sorted_problems(problems: Problems) -> Problems:
    """Unique problems in file order (problems without a place first)."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p[0].file, p[0].line, p[0].col) if p[0]
                  else ("", 0, 0))


def read_yaml(path: Path | str) -> tuple[Any, UnreadableValues | None]:
    """`load_yaml(path)`, but a scalar it cannot read (2026-02-30, a number of 5000
    digits) does not stop the file: the document with such scalars as their text, and
    their problems (None when there are none), whose `merged` adds a parser's problems
    (but none inside such a scalar), so one check reports every problem of the file."""
    try:
        return load_yaml(path), None
    except UnreadableValues as exc:
        return exc.data, exc


def with_unreadable(unreadable: UnreadableValues | None, problems: Problems) -> Problems:
    """`problems` and those of `read_yaml`'s unreadable scalars, in file order."""
    return sorted_problems(unreadable.merged(problems) if unreadable else problems)


def parse_file(path: Path | str, parse: Callable[[Any], Any]) -> Any:
    """`parse` of the file read (`read_yaml`), for a parser of loaded data: its RuleError
    with the problems of the scalars the loader could not read (raised when it has none)."""
    data, unreadable = read_yaml(path)
    if unreadable is None:
        return parse(data)
    try:
        parse(data)
    except RuleError as exc:
        raise RuleError(with_unreadable(unreadable, exc.problems)) from None
    raise RuleError(with_unreadable(unreadable, []))


def declared_names(name: Any) -> set[str]:
    """A name that was declared but is not valid, as written and as lower_snake_case
    (`Paid-Orders` → paid_orders): what references to it most likely say."""
    text = str(name)
    return {text, re.sub(r"\W", "_", text.strip()).lower()}


class Fields(dict):
    """Names an expression may use → their type, plus `broken`: names declared in a rule
    file whose declaration has a problem of its own, reported there. An expression that
    fails only because it names a broken one adds no problem (see the module doc)."""

    def __init__(self, types: Mapping[str, str] | Iterable[tuple[str, str]] = (),
                 broken: Iterable[str] = ()):
        super().__init__(types)
        self.broken: set[str] = set(broken)


def broken_names(fields: Mapping[str, str]) -> set[str]:
    """The broken names carried by `fields` (none for a plain mapping)."""
    return getattr(fields, "broken", set())


@dataclass(frozen=True)
class LocatedText:
    """A rule string (an expression) with where it is in the file."""

    value: str
    loc: Location | None
    # Maps a character offset of `value` to its place in the file (from the loader).
    locate: Callable[[int], Location | None] | None = dc_field(default=None, compare=False)

    def loc_at(self, offset: int) -> Location | None:
        if self.locate is not None:
            try:
                return self.locate(offset) or self.loc
            except Exception:  # a node without marks (built in memory): the value's start
                return self.loc
        return self.loc


def compile_located(text: LocatedText, fields: Mapping[str, str], expect: str | None,
                    as_of: dt.date, what: str | None = None,
                    column_sql: Callable[[str], str] | None = None,
                    problems: Problems | None = None, **options: Any) -> CompiledExpr | None:
    """compile_expr (`options`: its finite_guard, whole_fields) with its error turned into
    a located problem: appended to `problems` (and None returned), or raised as a
    RuleError when `problems` is None. An unknown name that is one of `fields.broken`
    appends nothing (its declaration's problem is the one to fix) and returns None."""
    try:
        return compile_expr(text.value, fields, expect=expect, as_of=as_of,
                            column_sql=column_sql, **options)
    except ExprError as exc:
        if problems is not None and exc.unknown in broken_names(fields):
            return None
        message = exc.message if what is None else f"{what}: {exc.message}"
        problem = (text.loc_at(exc.offset or 0), message)
        if problems is None:
            raise RuleError([problem]) from None
        problems.append(problem)
        return None


class RuleDoc:
    """Collects the problems of one rule file, with look-ups of where its nodes are."""

    def __init__(self, path: Path | str, problems: Problems | None = None):
        self.path = Path(path)
        self.problems: Problems = problems if problems is not None else []
        # id(mapping) → (mapping, keys it lacks that one of its unknown keys misspells)
        self._mistyped: dict[int, tuple[Any, set[str]]] = {}
        self.unreadable: UnreadableValues | None = None  # the file's (`load`)

    @classmethod
    def read(cls, path: Path, shape: str, keys: tuple[str, ...]) -> tuple[RuleDoc, Mapping]:
        """The rule file at `path` loaded, with its top level checked (`root`)."""
        doc = cls(path)
        return doc, doc.root(doc.load(), shape, keys)

    def load(self) -> Any:
        """The file read (`read_yaml`): its scalars that cannot be read are problems of
        this document, reported with the others (`found`)."""
        data, self.unreadable = read_yaml(self.path)
        return data

    def found(self) -> Problems:
        """The problems of the file, in file order (those of `load` with them)."""
        return with_unreadable(self.unreadable, self.problems)

    def file_hash(self) -> str:
        """What the rules' `rules_hash` records: the file's content, '' without a file."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16] \
            if self.path.exists() else ""

    # -- where ---------------------------------------------------------------------------
    def here(self) -> Location:
        return Location(str(self.path), 1, 1)

    def loc(self, node: Any) -> Location:
        return getattr(node, "loc", None) or self.here()

    def key_loc(self, mapping: Any, key: Any) -> Location:
        getter = getattr(mapping, "key_loc", None)
        return (getter(key) if getter else None) or self.loc(mapping)

    def value_loc(self, mapping: Any, key: Any) -> Location:
        getter = getattr(mapping, "value_loc", None)
        if getter is None or key not in mapping:
            return self.key_loc(mapping, key)
        return getter(key) or self.key_loc(mapping, key)

    def item_loc(self, seq: Any, index: int) -> Location:
        getter = getattr(seq, "item_loc", None)
        found = getter(index) if getter else None
        if found is None and index < len(seq):
            found = getattr(seq[index], "loc", None)
        return found or self.loc(seq)

    def text(self, mapping: Any, key: Any) -> LocatedText:
        """The expression at mapping[key]; a nested structure is a problem (reported once,
        then a placeholder that compiles stands in)."""
        value = mapping[key]
        if isinstance(value, bool):  # YAML reads a bare true/false as a boolean
            value = "true" if value else "false"
        elif isinstance(value, (Mapping, list)):
            self.add(self.value_loc(mapping, key),
                     f"`{key}:` must be an expression (text), not a structure")
            value = "true"
        getter = getattr(mapping, "text_loc", None)
        locate = (lambda offset: getter(key, offset)) if getter else None
        return LocatedText(str(value), self.value_loc(mapping, key), locate)

    def root(self, doc: Any, shape: str, keys: tuple[str, ...]) -> Mapping:
        """The file's top level, its unknown keys reported: an empty file is an empty
        mapping; anything but a mapping stops the parse here (nothing else can be read)."""
        if doc is None:
            return {}
        if not isinstance(doc, Mapping):
            self.add(self.loc(doc), f"{self.path.name} must be a mapping with {shape}")
            self.raise_if_problems()
        for key in doc:
            if key not in keys:
                self.add(self.key_loc(doc, key), f"unknown key '{key}'"
                         f"{self.near_miss(doc, key, keys)} (known: {', '.join(keys)})")
        return doc

    def list_at(self, mapping: Mapping, key: str, missing: str, not_list: str) -> list:
        """mapping[key] when it is a list; else a problem (`missing` / `not_list`) and []."""
        raw = mapping.get(key)
        if raw is None:
            if not self.mistyped(mapping, key):
                self.add(self.loc(mapping), missing)
        elif not isinstance(raw, list):
            self.add(self.value_loc(mapping, key), not_list)
        else:
            return raw
        return []

    # -- what ----------------------------------------------------------------------------
    def add(self, loc: Location | None, message: str) -> None:
        self.problems.append((loc, message))

    def near_miss(self, mapping: Mapping, key: Any, allowed: tuple[str, ...]) -> str:
        """did_you_mean for an unknown key of `mapping`; the key it misspells, when the
        mapping lacks it, is remembered as mistyped (see `mistyped`)."""
        meant = near_miss(key, allowed)
        if meant is None:
            return ""
        if meant not in mapping:
            self._mistyped.setdefault(id(mapping), (mapping, set()))[1].add(meant)
        return f" (did you mean '{meant}'?)"

    def mistyped(self, mapping: Any, key: str) -> bool:
        """Whether `key`, absent from `mapping`, is misspelt there by an unknown key already
        reported with it as the near miss: one typo, one error, so what follows only from
        `key` being absent ("missing `points:`", "needs `field:`") is not reported too."""
        entry = self._mistyped.get(id(mapping))
        return entry is not None and entry[0] is mapping and key in entry[1]

    def absent(self, mapping: Any, key: str) -> bool:
        """`mapping[key]` is not given (None) and not merely mistyped (`mistyped`)."""
        return mapping.get(key) is None and not self.mistyped(mapping, key)

    def unknown_keys(self, mapping: Mapping, allowed: tuple[str, ...], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(self.key_loc(mapping, key),
                         f"{what}: unknown key '{key}'{self.near_miss(mapping, key, allowed)} "
                         f"(allowed: {', '.join(allowed)})")

    def named_items(self, raw: Any, kind: str, allowed: tuple[str, ...], shape: str,
                    broken: set[str] | None = None, duplicates: list | None = None):
        """Yield (item, name, name_loc) for each mapping of `raw` with a valid, unique
        lower_snake_case `name:`; everything else is recorded as a problem. A name that
        is not valid goes to `broken` (as written and as `declared_name` reads it), so
        references to it are not reported again. An item whose name is taken goes to
        `duplicates` when given (the caller checks it too: what is wrong inside it is
        said with the duplicate, not only once its name is fixed)."""
        seen: dict[str, Location] = {}
        for index, item in enumerate(raw):
            where = self.item_loc(raw, index)
            if not isinstance(item, Mapping):
                self.add(where, f"each {kind} must be a mapping with {shape}")
                continue
            name = item.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                # A name YAML read as no text (`010` is 8, `no` false) is quoted and
                # recorded as written: what a reference to it says
                text = name if isinstance(name, str) else plain_text(item, "name")
                if text is None and name is not None:
                    text = str(name)
                if broken is not None and text is not None:
                    broken.update(declared_names(text))
                where = self.value_loc(item, "name") if "name" in item else where
                if name is None:
                    self.add(where, f"{kind} needs a `name:` in lower_snake_case")
                elif not isinstance(name, str) and NAME_RE.match(text):
                    self.add(where, f"{kind} name {text} is read as {read_as(name)}, not a "
                             f"name: quote it ('{text}')")
                else:
                    self.add(where, f"{kind} name '{text}' must be lower_snake_case "
                             "(letters, digits, _)")
                continue
            self.unknown_keys(item, allowed, f"{kind} '{name}'")
            loc = self.key_loc(item, "name")
            if name in seen:
                self.add(loc, f"{kind} '{name}' is defined twice (first at {seen[name]})")
                if duplicates is not None:
                    duplicates.append((item, name, loc))
                continue
            seen[name] = loc
            yield item, name, loc

    def raise_if_problems(self) -> None:
        problems = self.found()
        if problems:
            raise RuleError(problems)
