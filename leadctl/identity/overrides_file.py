"""The reviewed file of identity overrides, `rules/identity_overrides.yaml`, and how
commands append to it (`leadctl identity link / unlink / accept / reject`).

One format for this file and for the `overrides:` key of `rules/identity.yaml`: a list
of entries, each

    - kind: must_link | cannot_link
      leads: [{source: sem_baidu, lead_id: BD100001}, {source: feed_douyin, lead_id: DY500007}]
      # or, instead of leads:
      values: [{type: phone, value: '+8613812345678'}]
      reason: same person, confirmed on the phone
      by: ops_xu
      at: '2026-12-02T05:50:00'

A lead may also be written by hand as a plain lead id string when that id is unique
across sources. `must_link` with `leads`: these leads are one person; with `values`:
every lead carrying one of these values is one person. `cannot_link` with two `leads`:
they never share a person; with one value: that value never links.

Commands only ever append an entry as text at the end of the file, so comments and the
order of earlier (reviewed) entries are kept, and `git diff` shows exactly what a
command added.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from leadctl.errors import RuleError
from leadctl.rules.load import load_yaml_text
from leadctl.textfile import editing, write_text_file, yaml_quoted

OVERRIDES_FILE = "identity_overrides.yaml"
KINDS = ("must_link", "cannot_link")

_HEADER = """\
# Identity overrides: reviewed corrections to OneID that survive every rebuild.
# `leadctl identity link / unlink / accept / reject` append entries here; edit or delete
# them by hand like any rule file. Format: see the `overrides:` key in identity.yaml.
overrides:
"""


def current_user() -> str:
    """Who made a change: $LEADCTL_USER, else the login name."""
    try:
        return os.environ.get("LEADCTL_USER") or getpass.getuser()
    except Exception:  # no login name (some containers)
        return "unknown"


def override_entry(kind: str, *, leads: list[dict[str, str]] | None = None,
                   values: list[dict[str, str]] | None = None, reason: str,
                   by: str | None = None, at: datetime) -> dict[str, Any]:
    """One entry in the file's format (keys in the order they are written); `at`: the
    workspace clock's now (`ws.now()`), not the machine's."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if bool(leads) == bool(values):
        raise ValueError("an override names either leads or values")
    entry: dict[str, Any] = {"kind": kind}
    if leads:
        entry["leads"] = [{"source": lead["source"], "lead_id": lead["lead_id"]}
                          for lead in leads]
    else:
        entry["values"] = [{"type": v["type"], "value": v["value"]} for v in values or []]
    entry["reason"] = reason
    entry["by"] = by or current_user()
    entry["at"] = at.replace(microsecond=0).isoformat()
    return entry


def entry_text(entry: dict[str, Any]) -> str:
    """The YAML text of one list item: `- kind: …` then its keys indented; a list of
    leads or values in flow style, one line. Strings are written JSON-quoted (valid YAML
    double-quoted scalars) so any reason text round-trips."""

    def scalar(value: Any) -> str:
        return yaml_quoted(str(value))

    def flow(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(flow(item) for item in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
        return scalar(value)

    lines = [f"{key}: {flow(value)}" for key, value in entry.items()]
    return "- " + "\n  ".join(lines) + "\n"


def append_overrides(rules_dir: Path | str, entries: list[dict[str, Any]],
                     check: Callable[[], None] | None = None) -> Path:
    """Append entries to `rules_dir/identity_overrides.yaml` (created with its header
    when missing); returns the file's path. RuleError, and nothing written, when the file
    would not read back as its entries plus these (a file broken already, an `overrides:`
    key that is not the file's last). `check`: run once the file is this writer's alone,
    before anything is written (raises to write nothing): what it checks against the file
    holds until the write (a `link` and an `unlink` of one pair at once both passed a
    check made before the other wrote)."""
    path = Path(rules_dir) / OVERRIDES_FILE
    with editing(path):  # another append waits: each keeps every entry written before it
        if check is not None:
            check()
        raw = path.read_bytes().decode("utf-8") if path.exists() else _HEADER
        # As the file is written: a byte order mark, CRLF line ends (Windows editors) kept
        bom = "\ufeff" if raw.startswith("\ufeff") else ""
        crlf = "\r\n" in raw and raw.count("\n") == raw.count("\r\n")
        text = appended_text(raw[len(bom):].replace("\r\n", "\n"), entries, str(path))
        return write_text_file(path, bom + (text.replace("\n", "\r\n") if crlf else text))


# `overrides: []`, the empty list as a hand-written file may say it: entries follow it.
_EMPTY_FLOW_LIST = re.compile(r"^overrides:[ \t]*\[[ \t]*\][ \t]*(#.*)?$", re.MULTILINE)
_ITEM = re.compile(r"^([ \t]*)- ", re.MULTILINE)


def appended_text(text: str, entries: list[dict[str, Any]], file: str) -> str:
    """The file's text with the entries appended as items of its `overrides:` list,
    indented as its items are (a hand-edited file indents them)."""
    before = _overrides(text, file)
    text = _EMPTY_FLOW_LIST.sub(lambda m: "overrides:" + (f"  {m[1]}" if m[1] else ""), text)
    if text and not text.endswith("\n"):
        text += "\n"
    key = re.search(r"^overrides:", text, re.MULTILINE)
    if key is None:  # an empty file, or one of comments only
        text += "overrides:\n"
        key = re.search(r"^overrides:", text, re.MULTILINE)
    item = _ITEM.search(text, key.end())
    indent = item.group(1) if item else ""
    text += "".join("".join(indent + line for line in entry_text(entry).splitlines(True))
                    for entry in entries)
    try:
        after = _overrides(text, file)
    except RuleError:
        after = None
    if after != before + entries:
        raise RuleError([(None, f"{file}: cannot append to its `overrides:` list (it is not "
                                "the file's last key, or not a list of `- kind: …` items); "
                                "nothing was written")])
    return text


def _overrides(text: str, file: str) -> list:
    """The file's `overrides:` entries as plain data (RuleError when not valid YAML)."""
    try:
        data = load_yaml_text(text, file)
    except RuleError as exc:
        raise RuleError([(loc, f"{message}: fix the file first; nothing was written")
                         for loc, message in exc.problems]) from exc
    items = data.get("overrides") if isinstance(data, dict) else None
    return list(items) if isinstance(items, list) else []
