"""The README's headings are the commands' synopses: each command a heading names lists
every option its --help has, and none it lacks (scripts are written from the README)."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from leadctl.cli.app import app

README = Path(__file__).resolve().parent.parent / "README.md"
OPTION = re.compile(r"(?<![\w-])(--?[a-z][\w-]*)")


def _commands(command, path=()):
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))
    if not hasattr(command, "commands"):
        yield path, command


def _synopses(commands) -> dict[tuple[str, ...], set[str]]:
    """Per command a heading names: the options its headings write. A backticked part of a
    heading that is no command (`[--as-of DATE] [--json]`) adds to each command named."""
    named: dict[tuple[str, ...], set[str]] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("###"):
            continue
        here, shared = [], set()
        for part in re.findall(r"`([^`]*)`", line):
            words = part.split()
            paths = [p for p in commands if words[:1] == ["leadctl"] and
                     tuple(words[1:len(p) + 1]) == p]
            if paths:
                path = max(paths, key=len)
                here.append(path)
                named.setdefault(path, set()).update(OPTION.findall(part))
            else:
                shared |= set(OPTION.findall(part))
        for path in here:
            named[path] |= shared
    return named


def test_every_heading_synopsis_lists_exactly_the_options_of_its_command():
    commands = dict(_commands(typer.main.get_command(app)))
    synopses = _synopses(commands)
    assert len(synopses) >= 25  # every command with a section of its own
    problems = []
    for path, written in sorted(synopses.items()):
        params = [p.opts + p.secondary_opts for p in commands[path].params
                  if any(o.startswith("-") for o in p.opts) and "--help" not in p.opts]
        missing = [p[0] for p in params if not set(p) & written]
        unknown = sorted(written - {o for p in params for o in p})
        if missing or unknown:
            problems.append(f"leadctl {' '.join(path)}: not in the README {missing}, "
                            f"no such option {unknown}")
    assert problems == []
