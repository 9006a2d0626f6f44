"""`rules/sources.yaml`: extra header aliases and the workspace time zone."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from leadctl.clock import DEFAULT_ZONE
from leadctl.errors import Location, format_problem
from leadctl.ingest.columns import DEFAULT_ALIASES, fold_header
from leadctl.rules.bounds import written
from leadctl.rules.load import rule_path
from leadctl.rules.located import RuleDoc, did_you_mean, one_of

KNOWN_KEYS = {"aliases", "timezone"}


SOURCES_FILE = "sources.yaml"


@dataclass
class SourcesConfig:
    aliases: dict[str, list[str]] = field(default_factory=dict)
    timezone: str = DEFAULT_ZONE
    timezone_loc: Location | None = None  # where `timezone:` is written, if it is
    warnings: list[str] = field(default_factory=list)  # located, for rules check and logs



def load_sources_config(rules_dir: Path | str | None) -> SourcesConfig:
    path = rule_path(rules_dir, SOURCES_FILE)
    if not path.exists():
        return SourcesConfig()
    doc = RuleDoc(path)
    raw = doc.load()
    if raw is None:
        return SourcesConfig()
    if not isinstance(raw, dict):
        doc.add(doc.loc(raw), "sources.yaml must be a mapping")
        doc.raise_if_problems()
    for key in raw:
        if key not in KNOWN_KEYS:
            doc.add(doc.key_loc(raw, key),
                    f"unknown key '{key}'{one_of(key, sorted(KNOWN_KEYS))}")
    aliases = raw.get("aliases")
    config = SourcesConfig()
    if aliases is None:  # `aliases:` with nothing under it
        aliases = {}
    if not isinstance(aliases, dict):
        doc.add(doc.key_loc(raw, "aliases"), "aliases must map column → list")
    else:
        _check_aliases(doc, aliases, config)
    if "timezone" in raw:
        zone = raw["timezone"]
        if zone != config.timezone:  # the default needs no look-up
            problem = _time_zone_problem(zone, written(raw, "timezone"))
            if problem:
                doc.add(doc.value_loc(raw, "timezone"), problem)
        config.timezone = str(zone)
        config.timezone_loc = doc.value_loc(raw, "timezone")
    doc.raise_if_problems()  # in file order, as `rules check` and `run` give them
    return config


def _check_aliases(doc: RuleDoc, aliases: dict, config: SourcesConfig) -> None:
    """Each column's aliases into `config`: header names that fold (case, spaces, `_`,
    `-` aside) to something, to no canonical column's own name and to no alias of
    another column (which column a header then meant would be the file's key order). One
    that is another column's built-in alias overrides it, with a warning (`city: [tel]`
    takes every file's `tel` for a city, no longer a phone: meant or a slip)."""
    canonical = {fold_header(c): c for c in DEFAULT_ALIASES}
    builtin = {fold_header(a): c for c, names in DEFAULT_ALIASES.items() for a in names}
    taken: dict[str, str] = {}
    for column, names in aliases.items():
        if column not in DEFAULT_ALIASES:
            doc.add(doc.key_loc(aliases, column), f"unknown canonical column "
                    f"'{column}'{did_you_mean(column, DEFAULT_ALIASES)}")
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            doc.add(doc.key_loc(aliases, column),
                    f"aliases of '{column}' must be a list of header names")
            continue
        for index, name in enumerate(names):
            folded, where = fold_header(name), doc.item_loc(names, index)
            other = canonical.get(folded) or taken.get(folded)
            if not folded:
                doc.add(where, f"alias {name!r} of '{column}' is no header name (nothing "
                               "is left of it once case, spaces, _, - and . are set aside)")
            elif other is not None and other != column:
                doc.add(where, f"alias '{name}' of '{column}' already names the column "
                               f"'{other}': a header can mean one column")
            elif builtin.get(folded, column) != column:
                config.warnings.append(format_problem(
                    where, f"alias '{name}' of '{column}' is a built-in alias of "
                           f"'{builtin[folded]}': every file's {name} column is read as "
                           f"{column}, not {builtin[folded]}"))
            taken.setdefault(folded, column)
        config.aliases[column] = list(names)


def _time_zone_problem(zone, shown: str) -> str | None:
    """Why `timezone:` is not a time zone name the engines know (the IANA names DuckDB
    lists: `Asia/Shanghai`, `UTC`), else None. An unknown one failed every file's ingest
    with a message that blamed the file."""
    if not isinstance(zone, str) or not zone.strip():
        return f"timezone must be a time zone name like Asia/Shanghai, not {shown}"
    names = _time_zone_names()
    if zone in names and ("/" in zone and not zone.startswith(LEGACY_PREFIXES)
                          or zone in PLAIN_ZONES):
        return None
    if zone in names:  # ICU's legacy ids: CST is US Central time there, China's in a file
        return (f"time zone '{zone}' is a legacy alias or an abbreviation (CST is China's "
                "and US Central time): write an IANA region name like Asia/Shanghai, or UTC")
    return (f"unknown time zone '{zone}'"
            f"{did_you_mean(zone, names) or ' (an IANA name like Asia/Shanghai, or UTC)'}")


# Zone names without a region that mean one thing; any other ICU id without `/` (CST, BST,
# IST, PRC…) is a legacy alias or abbreviation.
PLAIN_ZONES = ("UTC", "GMT")
# ICU's ids with a `/` that are no IANA region either: SystemV/CST6 is US Central time.
LEGACY_PREFIXES = ("SystemV/", "US/Pacific-New")


@functools.cache  # a command loads sources.yaml more than once (tags, ingest, the checks)
def _time_zone_names() -> tuple[str, ...]:
    import duckdb  # only when a workspace sets a zone other than the default

    with duckdb.connect() as con:
        return tuple(row[0] for row in con.execute("SELECT name FROM pg_timezone_names()")
                     .fetchall())
