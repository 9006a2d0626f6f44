"""`rules/sources.yaml`: extra header aliases and the workspace time zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from leadctl.errors import Location, RuleError

KNOWN_KEYS = {"aliases", "timezone"}


@dataclass
class SourcesConfig:
    aliases: dict[str, list[str]] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"


def load_sources_config(rules_dir: Path | None) -> SourcesConfig:
    path = (rules_dir or Path("rules")) / "sources.yaml"
    if not path.exists():
        return SourcesConfig()
    from leadctl.ingest.columns import DEFAULT_ALIASES
    from leadctl.rules.load import load_yaml

    doc = load_yaml(path)
    if doc is None:
        return SourcesConfig()
    problems: list[tuple[Location | None, str]] = []
    if not isinstance(doc, dict):
        raise RuleError([(doc_loc(doc, path), "sources.yaml must be a mapping")])
    for key in doc:
        if key not in KNOWN_KEYS:
            problems.append((key_loc(doc, key, path),
                             f"unknown key '{key}' (known: {', '.join(sorted(KNOWN_KEYS))})"))
    aliases = doc.get("aliases") or {}
    config = SourcesConfig()
    if not isinstance(aliases, dict):
        problems.append((key_loc(doc, "aliases", path), "aliases must map column → list"))
    else:
        for column, names in aliases.items():
            if column not in DEFAULT_ALIASES:
                problems.append((key_loc(aliases, column, path),
                                 f"unknown canonical column '{column}'"))
            elif not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                problems.append((key_loc(aliases, column, path),
                                 f"aliases of '{column}' must be a list of header names"))
            else:
                config.aliases[column] = list(names)
    if "timezone" in doc:
        config.timezone = str(doc["timezone"])
    if problems:
        raise RuleError(problems)
    return config


def key_loc(mapping, key, path: Path) -> Location | None:
    getter = getattr(mapping, "key_loc", None)
    return getter(key) if getter else Location(str(path), 1, 1)


def doc_loc(node, path: Path) -> Location:
    return getattr(node, "loc", None) or Location(str(path), 1, 1)
