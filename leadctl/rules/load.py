"""Load rule YAML keeping the file:line:col of every key, value and list item.

`load_yaml(path)` returns plain Python data in which every mapping is a `YDict` (a dict)
and every sequence a `YList` (a list); scalars stay plain `str`/`int`/`float`/`bool`/
`None`/`date`. The containers know where their children are:

    rules = load_yaml("rules/tags.yaml")
    tag = rules["tags"][0]
    tag.loc                      # Location of the mapping itself
    tag.key_loc("when")          # where the key `when` is written
    tag.value_loc("when")        # where its value starts (the mapping's loc if absent)
    tag.text_loc("when", 7)      # where character 7 of the string value is
    rules["tags"].item_loc(0)    # where list item 0 starts

`text_loc` maps a 0-based character offset inside a string value to its exact place in
the file, for plain, quoted ('...', "...") and block (| and >) scalars, so expression
errors can point at the offending character. Broken YAML, duplicate keys and missing
files raise `RuleError` with the location of the problem. A plain scalar YAML reads as a
date or integer Python cannot build (2026-02-30; more than 4300 digits) raises
`UnreadableValues`: a `RuleError` with every such scalar, which also carries the document
read with each one as its text, so a parser can go on to the file's other problems.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadctl.errors import Location, RuleError

__all__ = ["UnreadableText", "UnreadableValues", "YDict", "YList", "load_yaml",
           "load_yaml_text", "rules_hash"]


class _Source:
    """The text of one file, for turning character indexes into locations."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.text = text
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def loc(self, index: int) -> Location:
        line = bisect.bisect_right(self.line_starts, index) - 1
        return Location(self.file, line + 1, index - self.line_starts[line] + 1)


@dataclass(frozen=True)
class _Mark:
    """Where one node sits: its start, and for scalars what is needed by `text_loc`."""

    source: _Source
    start: int  # character index of the node's first character
    end: int  # character index just after the node
    style: str | None = None  # scalar style: None/'' plain, "'", '"', '|', '>'
    parent_indent: int = -1  # column (0-based) of the enclosing block collection
    # an alias's copy of a plain scalar: where its anchor's text is (`&r 010` for `*r`)
    anchor_span: tuple[int, int] | None = None

    @property
    def loc(self) -> Location:
        return self.source.loc(self.start)


class YDict(dict):
    """A mapping from a YAML file; a plain dict plus the locations of its parts."""

    loc: Location

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.loc = Location("<memory>", 1, 1)
        self._key_marks: dict[Any, _Mark] = {}
        self._value_marks: dict[Any, _Mark] = {}

    def key_loc(self, key: Any) -> Location:
        """Where `key` is written; the mapping's own location if the key is absent."""
        mark = self._key_marks.get(key)
        return mark.loc if mark else self.loc

    def value_loc(self, key: Any) -> Location:
        """Where the value of `key` starts; the mapping's location if the key is absent
        (so "missing key" errors can point at the mapping)."""
        mark = self._value_marks.get(key)
        return mark.loc if mark else self.loc

    def text_loc(self, key: Any, offset: int) -> Location:
        """Location of character `offset` (0-based) of the string value of `key`."""
        mark = self._value_marks.get(key)
        return _text_loc(mark, self.get(key), offset) if mark else self.loc


class YList(list):
    """A sequence from a YAML file; a plain list plus the locations of its items."""

    loc: Location

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.loc = Location("<memory>", 1, 1)
        self._item_marks: list[_Mark] = []

    def item_loc(self, index: int) -> Location:
        """Where item `index` starts; the list's own location if out of range."""
        try:
            return self._item_marks[index].loc
        except IndexError:
            return self.loc

    def text_loc(self, index: int, offset: int) -> Location:
        """Location of character `offset` (0-based) of the string item at `index`."""
        try:
            mark = self._item_marks[index]
        except IndexError:
            return self.loc
        return _text_loc(mark, self[index], offset)


class UnreadableText(str):
    """Stands in, as its text, for a scalar YAML reads as a date or integer Python cannot
    build (2026-02-30); its problem is the loader's (`UnreadableValues`)."""


class UnreadableValues(RuleError):
    """Scalars YAML reads as a date or integer Python cannot build: `problems`, one at each
    (in file order); `data`: the document with each as an `UnreadableText`. `merged` adds a
    parser's problems of that data, but none inside such a scalar (a parser's word on
    the stand-in text: the loader's problem there says what is wrong)."""

    def __init__(self, problems: list[tuple[Location | None, str]], data: Any,
                 spans: list[tuple[Location, Location]]):
        super().__init__(problems)
        self.data = data
        self.spans = spans  # (first character, just after) of each such scalar and alias

    def merged(self, problems: list[tuple[Location | None, str]]) -> list:
        def inside(loc: Location | None) -> bool:
            return loc is not None and any(
                start.file == loc.file and (start.line, start.col) <= (loc.line, loc.col)
                < (end.line, end.col) for start, end in self.spans)

        return [*self.problems, *(p for p in problems if not inside(p[0]))]


# -- loading -------------------------------------------------------------------------


def load_yaml(path: str | os.PathLike, *, display_name: str | None = None) -> Any:
    """Load one YAML file. Locations use `display_name` (default: the path as given).

    Raises RuleError for a missing/unreadable file, invalid UTF-8, invalid YAML, more than
    one document, duplicate keys, or tags other than the standard safe ones; its subclass
    UnreadableValues for dates and integers that cannot be read (all of them at once).
    """
    file = display_name or str(path)
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise RuleError([(None, f"rule file not found: {file}")]) from None
    except IsADirectoryError:
        raise RuleError([(None, f"rule file is a directory, not a file: {file}")]) from None
    except OSError as exc:
        raise RuleError([(None, f"cannot read rule file {file}: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise RuleError([(Location(file, line, col), "file is not valid UTF-8")]) from None
    return load_yaml_text(text, file)


def load_yaml_text(text: str, file: str = "<string>") -> Any:
    """Load YAML from a string; `file` is the name used in locations."""
    import yaml

    # One kind of line break keeps character indexes and YAML's line numbers in step.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    source = _Source(file, text)
    loader = None
    try:
        loader = _make_loader(yaml)(text)  # a str is checked for printable characters here
        loader.source = source
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:  # with the unreadable scalars read before it
        before = loader.unreadable_problems() if loader is not None else []
        raise RuleError([*before, _yaml_problem(source, exc)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (e.g. DEL)
        before = text[: exc.position]
        loc = Location(file, before.count("\n") + 1, len(before) - before.rfind("\n"))
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise RuleError([(loc, f"character U+{ord(char):04X} is not allowed in YAML; "
                               f"write it as an escape (\\u{ord(char):04x}) in a double-quoted "
                               "string or remove it")]) from None
    except RecursionError:
        raise RuleError([(Location(file, 1, 1), "values nested too deeply (hundreds of "
                          "levels of [ or {), or an alias inside its own anchor")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.unreadable:
        if isinstance(data, UnreadableText):  # the whole document: nothing else to read
            raise RuleError(loader.unreadable_problems())
        raise UnreadableValues(loader.unreadable_problems(), data, loader.unreadable_spans)
    return data


def _yaml_problem(source: _Source, exc: Any) -> tuple[Location, str]:
    mark = exc.problem_mark or exc.context_mark
    loc = Location(source.file, mark.line + 1, mark.column + 1) if mark else None
    problem = exc.problem or exc.context or "invalid YAML"
    if "'\\t'" in problem:
        return loc, "tab characters cannot be used for indentation in YAML; use spaces"
    if "another document" in problem:
        return loc, "a rule file holds a single YAML document; remove the second '---'"
    if problem.startswith(("duplicate key", "a mapping key")):
        return loc, problem
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        where = exc.context_mark
        if where is not None and (where.line, where.column) != (mark.line, mark.column):
            message += f" ({exc.context} started at line {where.line + 1}, column "
            message += f"{where.column + 1})"
        else:
            message += f" ({exc.context})"
    return loc, message


_LOADER_CLASS: Any = None
MERGE_TAG = "tag:yaml.org,2002:merge"
ALIAS_STYLE = "*"  # the style of a scalar copied to an alias: located at the alias


# Values a document may repeat through aliases (every node of every copy counted): real
# rule files repeat a few thousand; nested aliases (`b: [*a, *a, …]`, `c: [*b, *b, …]`)
# multiply the values at each level, which would fill the memory before any validation.
MAX_ALIASED_NODES = 100_000


def _located_at(node: Any, start: Any, end: Any, copies: dict[int, Any],
                budget: list[int]) -> Any:
    """A copy of `node` and of everything under it, every part located at one alias;
    `budget[0]` (nodes the document may still copy) goes down by each node copied, and
    the copying stops when it is spent (the caller reports it)."""
    import yaml

    copy = copies.get(id(node))
    if copy is None:
        budget[0] -= 1
        if budget[0] < 0:
            return node  # spent: the caller refuses the document
        copy = copies[id(node)] = type(node).__new__(type(node))
        copy.__dict__.update(node.__dict__, start_mark=start, end_mark=end)
        if isinstance(node, yaml.ScalarNode):
            copy.style = ALIAS_STYLE
            # the anchor's text of a plain scalar, which YAML may have read as a number
            copy.anchor_span = getattr(node, "anchor_span", None) or (
                (node.start_mark.index, node.end_mark.index) if not node.style else None)
        elif isinstance(node, yaml.MappingNode):
            copy.value = [(_located_at(k, start, end, copies, budget),
                           _located_at(v, start, end, copies, budget)) for k, v in node.value]
        else:
            copy.value = [_located_at(child, start, end, copies, budget)
                          for child in node.value]
    return copy


def _make_loader(yaml: Any) -> Any:
    """A SafeLoader whose mappings/sequences are YDict/YList with marks (built once)."""
    global _LOADER_CLASS
    if _LOADER_CLASS is not None:
        return _LOADER_CLASS

    from yaml.constructor import ConstructorError

    class _Loader(yaml.SafeLoader):
        source: _Source

        def __init__(self, stream: Any):
            super().__init__(stream)
            self.alias_budget = [MAX_ALIASED_NODES]  # nodes the document may still copy
            # start index of each scalar that cannot be read → [problem, worded with key]
            self.unreadable: dict[int, list] = {}
            self.unreadable_spans: list[tuple[Location, Location]] = []

        def compose_node(self, parent: Any, index: Any) -> Any:
            """An alias (`- *tag`) is a copy of its anchor's node located at the alias, so
            a problem of that use (a tag defined twice) is reported where it is. Not for a
            merge (`<<: *base`: its keys are written at the anchor), nor for an alias inside
            its own anchor (unfinished; reported as recursive)."""
            if not self.check_event(yaml.AliasEvent):
                return super().compose_node(parent, index)
            alias = self.peek_event()
            node = super().compose_node(parent, index)
            merge = isinstance(index, yaml.ScalarNode) and index.tag == MERGE_TAG
            if merge or node.end_mark is None:
                return node
            copy = _located_at(node, alias.start_mark, alias.end_mark, {}, self.alias_budget)
            if self.alias_budget[0] < 0:
                raise RuleError([(self.source.loc(alias.start_mark.index),
                                  f"too many aliased values: the aliases up to here repeat "
                                  f"more than {MAX_ALIASED_NODES:,} values (nested aliases "
                                  "multiply them); write the values out or nest fewer "
                                  "aliases")])
            return copy

        def unreadable_value(self, node: Any, reason: str) -> UnreadableText:
            """A scalar that cannot be read: its problem recorded (once, at its anchor
            when it is an alias's copy), its text in its place."""
            start, end = node.start_mark.index, node.end_mark.index
            self.unreadable_spans.append((self.source.loc(start), self.source.loc(end)))
            if node.style != ALIAS_STYLE:
                self.unreadable.setdefault(start, [reason, False])
            return UnreadableText(node.value)

        def unreadable_problems(self) -> list[tuple[Location, str]]:
            return [(self.source.loc(start), reason)
                    for start, (reason, _) in sorted(self.unreadable.items())]

        def _mark(self, node: Any, parent_indent: int = -1) -> _Mark:
            style = node.style if isinstance(node, yaml.ScalarNode) else None
            return _Mark(self.source, node.start_mark.index, node.end_mark.index, style,
                         parent_indent, getattr(node, "anchor_span", None))

    def construct_mapping(loader: _Loader, node: Any) -> YDict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = loader.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                raise ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if first is not key_node:
                line = first.start_mark.line + 1
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {line})",
                    key_node.start_mark,
                )
        loader.flatten_mapping(node)  # `<<: *anchor` merges; later keys override
        result = YDict()
        result.loc = loader._mark(node).loc
        indent = node.start_mark.column if not node.flow_style else -1
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            result[key] = loader.construct_object(value_node, deep=True)
            unreadable = loader.unreadable.get(value_node.start_mark.index) \
                if isinstance(result[key], UnreadableText) else None
            if unreadable is not None and not unreadable[1]:  # worded with its key, once
                unreadable[:] = [f"`{key}:` {unreadable[0]}", True]
            result._key_marks[key] = loader._mark(key_node)
            result._value_marks[key] = loader._mark(value_node, indent)
        return result

    def construct_sequence(loader: _Loader, node: Any) -> YList:
        result = YList(loader.construct_object(child, deep=True) for child in node.value)
        result.loc = loader._mark(node).loc
        indent = node.start_mark.column if not node.flow_style else -1
        result._item_marks = [loader._mark(child, indent) for child in node.value]
        return result

    def construct_timestamp(loader: _Loader, node: Any) -> Any:
        try:
            return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
        except ValueError as exc:  # 2026-02-30, 2026-13-01, 24:00:00, an offset of a day…
            timed = loader.timestamp_regexp.match(node.value).group("hour")
            why = "its time zone offset is a day or more" if "offset" in str(exc) else exc
            return loader.unreadable_value(node, f"{node.value} is not a valid "
                                           f"{'timestamp' if timed else 'date'} ({why}); "
                                           "write a real one, or quote it to mean text")

    def construct_int(loader: _Loader, node: Any) -> Any:
        try:
            return yaml.SafeLoader.construct_yaml_int(loader, node)
        except ValueError:  # more digits than int() reads (4300): beyond any setting
            digits = sum(ch.isdigit() for ch in node.value)
            return loader.unreadable_value(node, f"{node.value[:20]}… is a number of "
                                           f"{digits} digits, beyond the range of any "
                                           "setting")

    _Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    _Loader.add_constructor("tag:yaml.org,2002:seq", construct_sequence)
    _Loader.add_constructor("tag:yaml.org,2002:timestamp", construct_timestamp)
    _Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    _LOADER_CLASS = _Loader
    return _Loader


# -- character offsets inside scalars ---------------------------------------------------


def _text_loc(mark: _Mark, value: Any, offset: int) -> Location:
    """Location of character `offset` of a scalar's value (clamped to the value)."""
    if mark.style == ALIAS_STYLE:
        return mark.loc
    if not isinstance(value, str):
        return mark.source.loc(mark.start + max(offset, 0))
    offset = min(max(offset, 0), len(value))
    if mark.style in ("|", ">"):
        positions = _block_positions(mark, value)
    else:
        positions = _flow_positions(mark, value)
    if positions is None:  # layout we do not model: count lines and columns of the value
        return _approximate_loc(mark, value, offset)
    return mark.source.loc(positions[offset])


def _flow_positions(mark: _Mark, value: str) -> list[int] | None:
    """File index of each character of a plain or quoted scalar's value (+1 for its end)."""
    from yaml.scanner import Scanner

    text = mark.source.text
    quoted = mark.style in ("'", '"')
    i, end = (mark.start + 1, mark.end - 1) if quoted else (mark.start, mark.end)
    chars: list[str] = []
    positions: list[int] = []
    literal_space: list[bool] = []  # whether a trailing space came from the source (trimmable)
    while i < end:
        ch = text[i]
        if ch == "\n":  # line folding: one break -> space, n breaks -> n-1 newlines
            while chars and chars[-1] in " \t" and literal_space[-1]:
                chars.pop(), positions.pop(), literal_space.pop()
            breaks, j = 0, i
            while j < end and text[j] in " \t\n":
                breaks += text[j] == "\n"
                j += 1
            folded = " " if breaks == 1 else "\n" * (breaks - 1)
            chars.extend(folded)
            positions.extend([i] * len(folded))
            literal_space.extend([False] * len(folded))
            i = j
            continue
        if mark.style == '"' and ch == "\\" and i + 1 < end:
            following = text[i + 1]
            if following == "\n":  # escaped line break joins lines without a space
                j = i + 2
                while j < end and text[j] in " \t":
                    j += 1
                i = j
                continue
            width = Scanner.ESCAPE_CODES.get(following)
            if width:
                decoded = chr(int(text[i + 2 : i + 2 + width], 16))
                step = 2 + width
            else:
                decoded = Scanner.ESCAPE_REPLACEMENTS.get(following, following)
                step = 2
            chars.append(decoded), positions.append(i), literal_space.append(False)
            i += step
            continue
        if mark.style == "'" and ch == "'" and text[i + 1 : i + 2] == "'":
            chars.append("'"), positions.append(i), literal_space.append(False)
            i += 2
            continue
        chars.append(ch), positions.append(i), literal_space.append(True)
        i += 1
    if "".join(chars) != value:
        return None
    positions.append(end)
    return positions


def _block_positions(mark: _Mark, value: str) -> list[int] | None:
    """File index of each character of a literal (|) or folded (>) block scalar's value."""
    text = mark.source.text
    header_end = text.find("\n", mark.start)
    if header_end < 0 or header_end >= mark.end:
        return None
    header = text[mark.start + 1 : header_end].split("#")[0].strip()
    digits = [c for c in header if c.isdigit()]
    lines: list[tuple[int, str]] = []  # (file index of line start, line text)
    start = header_end + 1
    while start < mark.end:
        stop = text.find("\n", start)
        stop = len(text) if stop < 0 else stop
        lines.append((start, text[start:stop]))
        start = stop + 1
    if digits:
        indent = max(mark.parent_indent, 0) + int(digits[0])
    else:
        non_blank = [line for _, line in lines if line.strip()]
        if not non_blank:
            return None
        indent = len(non_blank[0]) - len(non_blank[0].lstrip(" "))
    # The block's lines with indentation removed, each followed by its line break.
    chars: list[str] = []
    positions: list[int] = []
    for line_start, line in lines:
        content = line[indent:]
        chars.extend(content)
        positions.extend(range(line_start + indent, line_start + indent + len(content)))
        chars.append("\n")
        positions.append(line_start + len(line))
    # Align the value with that text: folding turns some breaks into spaces or drops them.
    result: list[int] = []
    j = 0
    for ch in value:
        while j < len(chars) and ch != chars[j] and not (ch == " " and chars[j] == "\n"):
            if chars[j] != "\n":
                return None
            j += 1
        if j == len(chars):
            return None
        result.append(positions[j])
        j += 1
    result.append(positions[j] if j < len(positions) else mark.end)
    return result


def _approximate_loc(mark: _Mark, value: str, offset: int) -> Location:
    start = mark.loc
    before = value[:offset]
    if "\n" not in before:
        quote = 1 if mark.style in ("'", '"') else 0
        return Location(start.file, start.line, start.col + quote + offset)
    first_line = start.line + (1 if mark.style in ("|", ">") else 0)
    return Location(start.file, first_line + before.count("\n"), len(before) - before.rfind("\n"))


# -- fingerprint ----------------------------------------------------------------------


def rules_hash(rules_dir: str | os.PathLike) -> str:
    """sha256 over the names and bytes of the *.yaml files directly in `rules_dir`
    (sorted by name; sub-folders such as tests/ are not included)."""
    digest = hashlib.sha256()
    for path in sorted(Path(rules_dir).glob("*.yaml")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def changed_since_note(stored_hash: str | None, file_hash: str | None, file: str,
                       results: str, command: str) -> str | None:
    """For a screen showing stored `results` beside a rule file's definitions now: a note
    when the file has changed since they were computed (its hash then: `stored_hash`,
    None when unknown), else None."""
    if not stored_hash or not file_hash or stored_hash == file_hash:
        return None
    return (f"{file} has changed since {results} computed: the definitions shown are the "
            f"file's now; run `leadctl {command}` (or `{command} --dry-run` to preview) to "
            "recompute")


def rule_path(rules_dir: str | os.PathLike | None, name: str) -> Path:
    """A rule file of the rules directory (default ./rules)."""
    return Path(rules_dir or "rules") / name
