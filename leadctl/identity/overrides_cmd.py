"""`leadctl identity link A B` / `unlink A B`: one must_link / cannot_link entry appended
to `rules/identity_overrides.yaml` (identity/overrides_file.py), applied by the next
`resolve`.

A and B are whatever names a lead or a person: a lead id (`BD100001`, `sem_baidu/BD100001`)
names that lead, even one ingested but not resolved yet; anything else (a person id,
phone, e-mail… — identity/lookup.py) names a person, written as its earliest lead
(earliest created_at, then source, lead id: a lead, unlike a person id, never changes).

The entry is checked against the overrides already there before anything is written: a
link that an unlink contradicts (or the reverse) is a rule error and nothing is written.
Linking two leads that already are one person is still written (it keeps them together
when the values that join them today are later capped, blocked or cut); likewise
unlinking two leads of different persons (it keeps them apart in the future).
"""

from __future__ import annotations

from pathlib import Path

from leadctl import pii
from leadctl.errors import Location, RuleError, UsageError
from leadctl.identity import normalize
from leadctl.identity import overrides_sql as osql
from leadctl.identity.config import IdentityConfig, load_identity_config
from leadctl.identity.lookup import (
    earliest_lead,
    masked_query,
    resolve_person,
    source_lead_sql,
    source_splits,
)
from leadctl.identity.overrides import MUST_LINK, LeadRef, Override, conflicts, root
from leadctl.identity.overrides_file import OVERRIDES_FILE, append_overrides, override_entry

# Working tables of the must_link check (TEMP: gone with the connection).
ENTRIES, REFS, KEYS, MEMBERS = (f"_ovcmd_{name}" for name in ("entries", "refs", "keys",
                                                              "members"))


def lead_of(ws, query: str) -> dict:
    """`{source, lead_id, person_id, shown}` of the lead a query names (see the module
    doc); `shown` the query as messages echo it (a phone, e-mail…: masked)."""
    text = query.strip()
    if not text:
        raise UsageError("give a lead id or person id (or a phone, e-mail… of the person)")
    splits = source_splits(text)
    for where, params in ([source_lead_sql(splits, alias="l.")] if splits else []) + [
            ("l.lead_id = ?", [text])]:
        rows = ws.rows("SELECT l.source, l.lead_id, pl.person_id FROM leads l "
                       "LEFT JOIN person_leads pl ON pl.lead_key = l.lead_key "
                       f"WHERE {where} ORDER BY l.source, l.lead_id LIMIT 2", params)
        if len(rows) == 1:
            return {**rows[0], "shown": text}
    person, matched_by = resolve_person(ws, text)
    return {**earliest_lead(ws, person), "shown": masked_query(text, matched_by[0])}


def write_override(ws, rules_dir: Path, config: IdentityConfig, kind: str, a: str, b: str,
                   reason: str, by: str | None = None) -> dict:
    """Appends one entry; {written, file, same_person, leads}. Nothing is written when
    A and B are one lead or the entry contradicts the overrides already there."""
    if not reason.strip():
        raise UsageError("--reason must say why (it is kept with the override)")
    first, second = lead_of(ws, a), lead_of(ws, b)
    if (first["source"], first["lead_id"]) == (second["source"], second["lead_id"]):
        raise UsageError(f"{first['shown']!r} and {second['shown']!r} are the same lead "
                         f"({first['source']}/{first['lead_id']})")
    leads = [{"source": x["source"], "lead_id": x["lead_id"]} for x in (first, second)]
    entry = override_entry(kind, leads=leads, reason=reason.strip(), by=by, at=ws.now())
    path = Path(rules_dir) / OVERRIDES_FILE
    lines = path.read_text(encoding="utf-8").count("\n") if path.exists() else 4
    new = Override(kind, tuple(LeadRef(x["source"], x["lead_id"]) for x in leads),
                   reason=entry["reason"], loc=Location(str(path), lines + 1, 1))

    def check(current: IdentityConfig) -> None:
        problems = conflicts([*current.overrides, new], current.default_region)
        if kind == "cannot_link" and not problems:
            problems = _joined_in_the_data(ws, current, new, first, second)
        if problems:
            raise RuleError(problems)

    check(config)  # before the lock too: a contradiction is said without waiting for it
    # again once the file is this writer's alone: another link or unlink may have written
    written = append_overrides(rules_dir, [entry],
                               check=lambda: check(load_identity_config(rules_dir)))
    same = first["person_id"] is not None and first["person_id"] == second["person_id"]
    # shown, not stored: a phone or e-mail the reason quotes is masked (the file has it)
    return {"written": {**entry, "reason": pii.mask_text(entry["reason"])},
            "file": str(written), "same_person": same}


def _joined_in_the_data(ws, config: IdentityConfig, new: Override, first: dict,
                        second: dict) -> list:
    """A cannot_link of two leads that must_link entries join in the data (through the
    leads carrying a must_link's values, in the identifiers of the last resolve): resolve
    would refuse it, so it is refused before it is written. Only the must_link entries of
    the overrides as they are now count — not `identity_override_leads`, which still
    holds an entry deleted by hand since the last resolve — with their leads found as
    resolve finds them (overrides_sql.members_sql)."""
    musts = [o for o in config.overrides if o.kind == MUST_LINK]
    keys = [ws.scalar("SELECT lead_key FROM leads WHERE source = ? AND lead_id = ?",
                      [x["source"], x["lead_id"]]) for x in (first, second)]
    if not musts or None in keys:
        return []
    pattern = normalize.cn_mobile_pattern()
    try:
        ws.execute(osql.entries_sql(ENTRIES, musts))
        ws.execute(osql.lead_refs_sql(REFS, musts, "leads"))
        ws.execute(normalize.keyed_values_sql(
            KEYS, normalize.values_table_sql(osql.value_refs(musts)), pattern,
            config.default_region == "CN"))
        normalize.normalize_phone_leftovers(ws, [KEYS], config.default_region)
        ws.execute(osql.members_sql(MEMBERS, ENTRIES, REFS, KEYS, "lead_identifiers"))
        rows = ws.rows(f"SELECT entry, lead_key FROM {MEMBERS} ORDER BY entry, lead_key")
    finally:
        for table in (ENTRIES, REFS, KEYS, MEMBERS):
            ws.execute(f"DROP TABLE IF EXISTS {table}")
    parent: dict = {}
    for row in rows:  # each entry joins its leads
        parent[root(parent, ("lead", row["lead_key"]))] = root(parent, ("entry", row["entry"]))
    if root(parent, ("lead", keys[0])) != root(parent, ("lead", keys[1])):
        return []
    joined = root(parent, ("lead", keys[0]))
    places = sorted({str(musts[r["entry"]].loc) for r in rows
                     if musts[r["entry"]].loc and root(parent, ("entry", r["entry"])) == joined})
    return [(new.loc, f"conflicting overrides: {new.describe()} but must_link entries join "
                      f"the two leads in the data (at {'; '.join(places)})")]
