"""CLI output helpers without typer: usable by the fast portrait path too."""

from __future__ import annotations

import codecs
import datetime as dt
import errno
import json
import logging
import math
import os
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from leadctl.clock import iso_date
from leadctl.errors import (
    DataCheckFailed,
    InputError,
    NotFound,
    RuleError,
    UsageError,
    WorkspaceError,
    interruption,
    interruption_exit_code,
    was_published,
)
from leadctl.limits import FIRST_DATE, LAST_DATE, MAX_COUNT, MAX_DAYS
from leadctl.pii import display_width, map_text

# The "type" of a --json failure document: the named error class (or the documented
# class it refines: AmbiguousQuery is a NotFound, WorkspaceLocked a WorkspaceError).
ERROR_TYPES = (NotFound, DataCheckFailed, RuleError, UsageError, InputError, WorkspaceError)
INTERNAL_ERROR = "InternalError"
# The type of an error none of ERROR_TYPES names (a module's own LeadctlError), by its exit
# code: a script reading "type" never sees InternalError for an exit other than 3.
TYPE_BY_EXIT_CODE = {1: DataCheckFailed.__name__, 2: UsageError.__name__}


# Dates a command computes with, counts and limits (--limit, --n), lock lengths
# (--lock-days): the bounds rule files are checked against too (leadctl/limits.py).
MAX_LOCK_DAYS = MAX_DAYS


def parse_date(value: str, option: str, example: str = "2026-11-01") -> dt.date:
    """A YYYY-MM-DD option value inside FIRST_DATE..LAST_DATE; UsageError naming the option."""
    try:
        day = iso_date(value)
    except ValueError:
        raise UsageError(f"{option} must be a date like {example}, not {value!r}") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise UsageError(f"{option} must be a date from {FIRST_DATE} to {LAST_DATE}, "
                         f"not {value!r}")
    return day


def parse_as_of(value: str | None) -> dt.date | None:
    """--as-of: a date, or None: the command's default, today in the workspace time zone
    (known once the workspace is open), or a view's (the last tag run's)."""
    return None if value is None else parse_date(value, "--as-of")


def check_count(option: str, value: int | None, *, high: int = MAX_COUNT) -> int | None:
    """A count or limit option: a whole number from 1 to `high` (None: not given)."""
    if value is not None and not 1 <= value <= high:
        raise UsageError(f"{option} must be a whole number from 1 to {high}, not {value}")
    return value


def check_amount(option: str, value: float | None) -> float | None:
    """A money option: a finite number >= 0 (None: not given)."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        # 1e400 parses as inf: the text typed is gone, so name what it became
        shown = "a number too large to hold" if math.isinf(value) else f"'{value}'"
        raise UsageError(f"{option} must be a finite number >= 0, not {shown}")
    return value


def check_share(option: str, value: float) -> float:
    """A share option: a number from 0 to 1."""
    if not 0 <= value <= 1:  # False for NaN too
        raise UsageError(f"{option} must be a number from 0 to 1, not '{value}'")
    return value


def check_text(option: str, value: str | None) -> str | None:
    """A name option: not empty or only whitespace, no control characters, valid UTF-8."""
    if check_utf8(option, value) is None:
        return value
    if not value.strip() or _CONTROL.search(value):
        raise UsageError(f"{option} must be a non-empty name without control characters, "
                         f"not {value!r}")
    return value


def check_utf8(option: str, value: str | None) -> str | None:
    """A text option that must be storable: bytes that are not UTF-8 are a UsageError."""
    if value is not None and not_utf8(value):
        raise UsageError(f"{option} is not valid UTF-8 text: {value!r}")
    return value


def not_utf8(text: str) -> bool:
    """Whether `text` came from bytes that are not UTF-8 (argv and file names decode
    such bytes to lone surrogates, which nothing can store or print)."""
    return _SURROGATE.search(text) is not None


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


# Control characters (but line breaks and tabs) and bidi overrides, shown escaped in
# messages: a value typed or read from a file must not recolour or rewrite the terminal.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with its control characters written as escapes (`\\x1b`, `\\u202e`); a
    `^^^` line under an escaped line moves to stay under the same characters (`find`'s
    marker under an invalid expression), as `pii.mask_lines` moves it under a masked one."""
    shown = _escaped(text)
    if shown == text or "^" not in text:
        return shown
    lines, shown_lines = text.split("\n"), shown.split("\n")  # line breaks stay as they are
    for i in range(1, len(lines)):
        caret = _CARET_LINE.fullmatch(lines[i])
        if caret and shown_lines[i - 1] != lines[i - 1]:
            shown_lines[i] = _escaped_caret(lines[i - 1], caret.end(1), caret.end(2))
    return "\n".join(shown_lines)


def _escaped(text: str) -> str:
    return _HIDDEN.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                  else f"\\u{ord(m.group()):04x}"), text)


_CARET_LINE = re.compile(r"( *)(\^+)\s*")


def _escaped_caret(line: str, start: int, end: int) -> str:
    """The `^^^` line for terminal columns [start, end) of `line`, once it is escaped."""
    before, after = [0], [0]  # the column before each character of `line`, and after
    for ch in line:
        before.append(before[-1] + display_width(ch))
        after.append(after[-1] + display_width(_escaped(ch)))

    def moved(column: int) -> int:
        if column >= before[-1]:  # past the line's end: as far past the escaped line's
            return after[-1] + column - before[-1]
        return after[next(k for k, cells in enumerate(before) if cells >= column)]

    first, last = moved(start), moved(end)
    return " " * first + "^" * max(last - first, 1)


def value_text(value: Any) -> str:
    """A value as every screen shows it (portrait, explain, find, report): numbers in full,
    to 2 decimals (550, 183.33, 1234567), None as —, lists joined, dates without midnight."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):  # 550, 183.33, 1234567 — never 1.23457e+06
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if abs(value) >= 1e15:  # no decimals, and past its 17 digits f"{:.0f}" made some up
            return repr(value).removesuffix(".0")  # as --json writes it: 1.5e+308, 9.99e+17
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value) or "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value.items())
    if hasattr(value, "isoformat"):
        text = value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
        return text.removesuffix(" 00:00:00")[:16]
    return str(value)


def error(message: str) -> None:
    write_stderr(f"error: {visible(message)}\n")


def warn(message: str) -> None:
    """A warning on stderr (`warning: …`), and in the --log-file log as the stages' own
    warnings are (the stderr handler skips it: it is printed here)."""
    write_stderr(f"warning: {visible(message)}\n")
    logging.getLogger("leadctl").warning(visible(message), extra={PRINTED: True})


def write_stderr(text: str) -> None:
    """A message on stderr. A stderr that cannot be written (closed: `2>&-`, a full disk)
    loses it, as the log's stderr handler does: the command still prints its result (one
    JSON document under --json) and ends with its own exit code."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):  # ValueError: a stderr file closed
        pass


PRINTED = "printed"  # a log record already written to stderr as it is


def print_json(data: Any) -> None:
    """One JSON document on stdout; NaN and infinities (not JSON) are written as null.
    Characters as they are on UTF-8 output, else escaped (`\\u4e0a`): the same document."""
    write_stdout(json.dumps(_finite(data), ensure_ascii=not _utf8(sys.stdout),
                            default=_json_default, allow_nan=False, indent=2) + "\n")


def tolerate_narrow_encodings() -> None:
    """Output whose encoding lacks characters (a GBK locale, PYTHONIOENCODING=ascii):
    a character it cannot hold prints as `?` on screens and in messages (JSON escapes
    it) instead of stopping the command (exit 1 with a traceback, after it published)."""
    for stream in (sys.stdout, sys.stderr):
        if not _utf8(stream) and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def _utf8(stream) -> bool:
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name == "utf-8"
    except LookupError:
        return False


def write_stdout(text: str) -> None:
    """Text on stdout, flushed: a reader that went away (`| head`) is then found here, and
    so is a stdout that cannot be written (`stdout_refused`)."""
    if sys.stdout is None:  # fd 1 was closed when the command started (`>&-`)
        refuse_stdout(OSError(errno.EBADF, os.strerror(errno.EBADF)))
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()
    except (OSError, ValueError) as exc:  # ValueError: a stdout file closed
        refuse_stdout(exc)


# Why stdout refused the command's output (a full disk, a closed stdout), once it has.
_STDOUT_REFUSED: list[str] = []


def refuse_stdout(exc: BaseException) -> None:
    """stdout cannot be written (`> /dev/full`, `>&-`), which no reader going away explains:
    what is still to print is dropped and the command does its work to the end; then it
    exits 2 saying so (`stdout_refused`), not with a traceback (exit 1) or exit 3."""
    if not _STDOUT_REFUSED:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _STDOUT_REFUSED.append(reason.rstrip("."))
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no stdout, or its file closed
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the process
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)  # also what Python's stdout still holds goes there
    finally:
        os.close(devnull)


# What `cannot write to stdout: …` adds once the command has run (exit 2 all the same).
WORK_DONE = " (the command's work is done; only its output is lost)"


def stdout_refused() -> str | None:
    """The `cannot write to stdout: …` message once stdout refused the output, else None."""
    return f"cannot write to stdout: {_STDOUT_REFUSED[0]}" if _STDOUT_REFUSED else None


def forget_stdout_refused() -> None:
    """A new command (in-process callers, tests) starts with a stdout that refused nothing."""
    _STDOUT_REFUSED.clear()


def stdout_gone() -> None:
    """The reader of stdout went away (`leadctl find … | head`): what is still to print is
    dropped, and the command ends as it would have (its work done, its exit code its own),
    not with exit 1 or a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _finite(int(value) if value == value.to_integral_value() else float(value)) \
            if value.is_finite() else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return _finite(value.to_dict())
    return str(value)


def error_type(exc: BaseException, exit_code: int | None = None) -> str:
    """The documented type of a failure with `exit_code` (default: the error's own)."""
    if interruption(exc):  # a signal stopped it: Ctrl-C or SIGTERM
        return "Terminated" if interruption_exit_code(exc) == 143 else "Interrupted"
    code = getattr(exc, "exit_code", 3) if exit_code is None else exit_code
    if code == 3:
        return INTERNAL_ERROR
    named = next((cls.__name__ for cls in ERROR_TYPES if isinstance(exc, cls)), None)
    return named or TYPE_BY_EXIT_CODE.get(code, INTERNAL_ERROR)


def failure_document(exc: BaseException, exit_code: int, message: str | None = None,
                     details: dict | None = None) -> dict:
    """What `--json` prints when a command fails: the partial result the command has
    (a run summary, candidates), then {"error": {type, message, location}, "exit_code"}."""
    error_part: dict = {"type": error_type(exc, exit_code),
                        "message": str(exc) if message is None else message, "location": None}
    if isinstance(exc, RuleError):
        error_part["location"] = next((str(loc) for loc, _ in exc.problems if loc), None)
        error_part["problems"] = problem_list(exc)
    partial = getattr(exc, "details", None) if details is None else details
    if was_published(exc):  # stopped during its publish: the work stands, do not redo it
        partial = {**(partial or {}), "published": True}
    return {**(partial or {}), "error": error_part, "exit_code": exit_code}


def problem_list(exc: RuleError) -> list[dict]:
    return [{"file": loc.file if loc else None, "line": loc.line if loc else None,
             "col": loc.col if loc else None, "message": message}
            for loc, message in exc.problems]


def report_failure(exc: BaseException, exit_code: int, json_out: bool, *,
                   message: str | None = None, details: dict | None = None,
                   echo: bool = True) -> None:
    """The error on stderr (unless the caller printed it), and with --json the failure
    document on stdout: a script redirecting stdout always gets one JSON document."""
    if echo:
        error(str(exc) if message is None else message)
    if json_out:
        print_json(failure_document(exc, exit_code, message, details))


# stdout's width: the terminal's, else $COLUMNS, else this (piped to cron logs, scripts).
PIPED_WIDTH = 160


# A control character of a value on a screen (an escape sequence in a lead's name, a tab
# in a file name) shows as its sign (␛ ␉, Unicode Control Pictures; C1 ones as �): one
# cell for one character, so a table keeps its layout, and nothing in the data can
# recolour or rewrite the terminal. A line break within one value stays a line break.
# Bidirectional overrides and isolates (U+202A-202E, U+2066-2069: `ab\u202ecd.exe` shows
# as `abexe.dc`) show as � too.
SIGNS = {**{i: 0x2400 + i for i in range(0x20) if i != 0x0A}, 0x7F: 0x2421,
         **{i: 0xFFFD for i in [*range(0x80, 0xA0), *range(0x202A, 0x202F),
                                *range(0x2066, 0x206A)]}}
_SIGNED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# The same, a line break too: one value, one line (a table cell, a portrait's item).
ONE_LINE = {**SIGNS, 0x0A: 0x240A}


def signed(text: str) -> str:
    return text.translate(SIGNS)


def one_line(text: str) -> str:
    """`text` signed, a line break too: a value within a line of a screen."""
    return text.translate(ONE_LINE)


def one_line_values(result: Any) -> Any:
    """Every text of a result as `one_line` shows it, before rich sees it (rich drops a
    BEL or CR, expands a tab and breaks the line at a line break)."""
    return map_text(result, one_line)


def _safe_console_class():
    """rich's Console whose rendered text has its control characters as signs: every
    value a screen prints (table cells, messages), whatever renderable carries it; rich's
    own colours and cursor codes are made after this, from styles and control segments."""
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        def render_str(self, text, **options):
            # before rich makes it a Text, which drops a BEL or CR and expands a tab
            return super().render_str(signed(text), **options)

        def render(self, renderable, options=None):
            for segment in super().render(renderable, options):
                if segment.control or not _SIGNED.search(segment.text):
                    yield segment
                else:
                    yield Segment(signed(segment.text), segment.style, segment.control)

    return SafeConsole


def stdout_console(piped_width: int = PIPED_WIDTH):
    class StdoutConsole(_safe_console_class()):
        def on_broken_pipe(self) -> None:  # rich's own: exit 1
            self.quiet = True
            stdout_gone()

        def _check_buffer(self) -> None:
            if sys.stdout is None and not self.quiet:  # rich would print to nowhere, exit 0
                refuse_stdout(OSError(errno.EBADF, os.strerror(errno.EBADF)))
            try:
                super()._check_buffer()
            except (OSError, ValueError) as exc:  # a full disk, a closed file: exit 2
                self.quiet = True
                del self._buffer[:]
                refuse_stdout(exc)

    width = None if isatty(sys.stdout) or os.environ.get("COLUMNS") else piped_width
    return StdoutConsole(width=width, markup=False)


def stderr_console():
    class StderrConsole(_safe_console_class()):
        def _check_buffer(self) -> None:
            try:
                super()._check_buffer()
            except (OSError, ValueError):  # a stderr that cannot be written: as write_stderr
                self.quiet = True
                del self._buffer[:]

    # a message is one line
    return StderrConsole(stderr=True, markup=False, soft_wrap=True)


def isatty(stream) -> bool:
    """Whether `stream` is a terminal; False for a closed one or none (`>&-`)."""
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False


# Printed text is data (names, file names, values), never rich markup: a name `a[/b]`
# failed to print and `[red]x.csv` was shown as x.csv. Markup is only written where a
# panel's title asks for it (a Panel's title is parsed whatever the console says).


# A column asks for its longest word, up to this many cells; longer words fold.
WORD_CAP = 32


def fit_columns(names: list[str], drop: tuple, fits) -> list[int]:
    """The indexes of the columns kept: the columns named in `drop` (a name, or a tuple of
    names that go together), first named first, go until `fits(kept)` says the kept ones
    fit. The one rule for every table, rich or hand-laid (portrait)."""
    kept = list(range(len(names)))
    for item in drop:
        if fits(kept):
            break
        for name in (item,) if isinstance(item, str) else item:
            kept.remove(names.index(name))
    return kept


def hidden_note(hidden: list[str], width: int, full: str = "--json") -> str:
    plural = "s" if len(hidden) > 1 else ""
    return (f"({len(hidden)} column{plural} hidden at {width} columns: {', '.join(hidden)}; "
            f"use {full})")


def table(title: str | None, columns: list[str], rows: list[list[Any]], *,
          right: tuple[str, ...] = (), drop: tuple = (), full: str = "--json",
          compact: bool = False, caption: str | None = None, total: bool = False):
    """A table that fits the width it is printed in: when its columns' longest words (up to
    WORD_CAP cells) do not fit, the columns named in `drop` go, first named first, and a
    note line names them (`full`: where the whole data is). Cells fold within a column."""
    unknown = {n for item in drop for n in ((item,) if isinstance(item, str) else item)
               } - set(columns)
    if unknown:
        raise ValueError(f"drop names unknown columns: {sorted(unknown)}")
    cells = [[_cell(v) for v in row] for row in rows]
    return FitTable(title, [_cell(c) for c in columns], cells, right=right, drop=drop,
                    full=full, compact=compact, caption=caption, total=total)


def _cell(value: Any) -> str:
    """A cell's text, one line per item of a list: a line break inside a value (a name,
    a file name) is shown as a sign, so a row of data stays one row."""
    if isinstance(value, list | tuple):
        return "\n".join(_cell(v) for v in value)
    return "" if value is None else str(value).translate(ONE_LINE)


class FitTable:
    """A rich renderable: the table (with its title and caption) at the width it is given."""

    def __init__(self, title, columns, rows, *, right, drop, full, compact, caption, total):
        self.title, self.columns, self.rows = title, columns, rows
        self.right, self.drop, self.full = right, drop, full
        self.compact, self.caption, self.total = compact, caption, total

    def _table(self, kept: list[int], cells: list[list[str]] | None = None):
        from rich import box
        from rich.table import Table

        if self.compact:
            t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      header_style="bold dim")
        else:
            t = Table(header_style="bold")
        for i in kept:
            name = self.columns[i]
            t.add_column(name, justify="right" if name in self.right else "left",
                         overflow="fold")
        rows = self.rows if cells is None else cells
        for index, row in enumerate(rows):
            last = self.total and index == len(rows) - 1
            t.add_row(*(row[i] for i in kept), style="bold" if last else None,
                      end_section=self.total and index == len(rows) - 2)
        return t

    def needed(self) -> list[int]:
        from rich.cells import cell_len

        def longest_word(text: str) -> int:
            return max((cell_len(w) for w in text.split()), default=0)

        return [min(max([longest_word(name)] + [longest_word(r[i]) for r in self.rows]),
                    WORD_CAP) for i, name in enumerate(self.columns)]

    def __rich_console__(self, console, options):
        from rich.measure import Measurement
        from rich.text import Text

        needed = self.needed()
        width = options.max_width

        def fits(kept: list[int]) -> bool:
            # The same table with every cell exactly as wide as its column needs.
            probe = self._table(kept, [["x" * needed[i] for i in range(len(needed))]])
            natural = Measurement.get(console, options.update_width(10_000), probe).maximum
            return natural <= width

        kept = fit_columns(self.columns, self.drop, fits)
        if self.title:
            yield Text(self.title, style="table.title")
        yield self._table(kept)
        if self.caption:
            yield Text(self.caption, style="table.caption")
        hidden = [name for i, name in enumerate(self.columns) if i not in kept]
        if hidden:
            yield Text(hidden_note(hidden, console.width, self.full), style="dim")


class Progress:
    """A rich progress bar on stderr, silent when stderr is not a terminal."""

    def __init__(self, description: str):
        self.description = description
        self._bar = None
        self._task = None

    def __enter__(self) -> Progress:
        if isatty(sys.stderr):
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(),
                                     console=stderr_console(), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=None)
        return self

    def update(self, done: int, total: int, label: str = "") -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total,
                             description=f"{self.description} {label}".strip())

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
