"""Suggested matches (`leadctl identity suggest / accept / reject`): pairs of persons that
share no linking value but are probably one person, with their evidence and a score
(identity/suggest_sql.py documents the evidence kinds and weights).

- `suggest(ws, config, rules_dir, min_score)` → `{"suggestions": [{"a", "b", "score",
  "evidence": [...]}, ...], "min_score", "reviewed"}`; pairs already reviewed (a
  must_link or cannot_link override, in rules/identity_overrides.yaml or identity.yaml's
  `overrides:`, naming a lead of each person — or naming two leads X and Y when the
  pair's evidence is between X and the value Y carries: suggest_sql.reviewed_pairs_sql)
  are left out.
- `review(ws, config, rules_dir, kind, pairs | all_above)` appends one override per
  pair: accept → `must_link`, reject → `cannot_link`, each naming the two leads the
  suggestion's strongest evidence is between (source + lead id: stable, unlike person
  ids; the leads that matched, so the pair stays reviewed when a split later parts
  either person).

A PAIR is written `PERSON_A:PERSON_B` (as `suggest` prints it, either order). `--all-above
S` takes every suggestion with score >= S.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from leadctl import pii
from leadctl.errors import NotFound, RuleError, UsageError
from leadctl.identity import suggest_sql as sql
from leadctl.identity.config import IdentityConfig
from leadctl.identity.lookup import canonical_person_id, looks_like_person_id
from leadctl.identity.overrides_file import OVERRIDES_FILE, append_overrides, override_entry
from leadctl.workspace import Workspace

DEFAULT_MIN_SCORE = 0.8
_PAIR = re.compile(r"\s*([^\s:,]+)\s*[:,]\s*([^\s:,]+)\s*")
_VALUE_KIND = {"phone_typo": "phone", "email_domain_typo": "email",
               "device_id_format": "device_id", "id_card": "id_card"}


# -- overrides already written (read back, simply) ---------------------------------------

def read_overrides(rules_dir: Path | str | None) -> list[dict[str, Any]]:
    """Every override entry of rules/identity_overrides.yaml and identity.yaml's
    `overrides:`, as `{kind, leads: [(source or None, lead_id)], values, reason, file}`;
    entries that are not well-formed are skipped (`rules check` reports them)."""
    import yaml

    if rules_dir is None:
        return []
    entries = []
    for name, key in ((OVERRIDES_FILE, "overrides"), ("identity.yaml", "overrides")):
        path = Path(rules_dir) / name
        if not path.exists():
            continue
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise RuleError([(None, f"{path}: cannot read overrides: {exc}")]) from exc
        items = doc.get(key) if isinstance(doc, dict) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get("kind") not in ("must_link", "cannot_link"):
                continue
            leads = []
            for lead in item.get("leads") or []:
                if isinstance(lead, dict) and lead.get("lead_id") is not None:
                    source = lead.get("source")
                    leads.append((None if source is None else str(source), str(lead["lead_id"])))
                elif isinstance(lead, str | int):
                    leads.append((None, str(lead)))
            values = [v for v in item.get("values") or [] if isinstance(v, dict)
                      and v.get("type") and v.get("value") is not None]
            entries.append({"kind": item["kind"], "leads": leads, "values": values,
                            "reason": item.get("reason"), "file": name})
    return entries


def _register_override_leads(ws: Workspace, entries: list[dict], table: str) -> None:
    """`table(entry, kind, source, lead_id)`: every lead the entries name (small)."""
    rows = [(i, e["kind"], source, lead_id) for i, e in enumerate(entries)
            for source, lead_id in e["leads"]]
    ws.execute(f"CREATE OR REPLACE TEMP TABLE {table} (entry INTEGER, kind VARCHAR, "
               "source VARCHAR, lead_id VARCHAR)")
    if rows:
        ws.execute(f"INSERT INTO {table} VALUES " + ", ".join(
            "(?, ?, ?, ?)" for _ in rows), [v for row in rows for v in row])


def override_persons(ws: Workspace, entries: list[dict]) -> list[dict]:
    """(entry index, kind, person_id) of every lead the entries name (small)."""
    if not any(e["leads"] for e in entries):
        return []
    try:
        _register_override_leads(ws, entries, "_sug_override_leads")
        return ws.rows(sql.override_persons_sql("_sug_override_leads")
                       + " ORDER BY entry, person_id")
    finally:
        ws.execute("DROP TABLE IF EXISTS _sug_override_leads")


def _register_reviewed(ws: Workspace, rules_dir) -> set[tuple[str, str, str, str]]:
    """Creates `_sug_reviewed(person_a, person_b, kind, how)` (after `_sug_evidence`:
    a pair is reviewed by the leads its persons hold, or by its evidence); returns its
    rows."""
    _register_override_leads(ws, read_overrides(rules_dir), "_sug_override_leads")
    ws.execute("CREATE OR REPLACE TEMP TABLE _sug_entries AS "
               + sql.override_persons_sql("_sug_override_leads"))
    ws.execute(sql.override_values_sql("_sug_override_values", "_sug_override_leads"))
    ws.execute(sql.reviewed_pairs_sql("_sug_reviewed", "_sug_entries",
                                      "_sug_override_values"))
    return {(r["person_a"], r["person_b"], r["kind"], r["how"])
            for r in ws.rows("SELECT person_a, person_b, kind, how FROM _sug_reviewed")}


# -- suggestions ---------------------------------------------------------------------------

def suggestion_rows(ws: Workspace, config: IdentityConfig, rules_dir=None, *,
                    min_score: float = 0.0, persons: list[str] | None = None,
                    skip_reviewed: bool = True
                    ) -> tuple[list[dict], set[tuple[str, str, str, str]]]:
    """The evidence rows of every suggestion scoring >= min_score (suggestions_sql; with
    `skip_reviewed`, not those of reviewed pairs), and the reviewed pairs (person_a,
    person_b, kind, how: 'leads' | 'evidence', as reviewed_pairs_sql); `persons`
    restricts both sides to these persons (and the pairs reviewed by evidence to theirs)."""
    try:
        ws.script(sql.leads_sql(persons))
        ws.execute(sql.raw_values_sql())
        ws.execute(sql.evidence_sql(
            {t: config.cap(t) for t in ("phone", "email", "device_id", "id_card")}))
        reviewed = _register_reviewed(ws, rules_dir)
        rows = ws.rows(sql.suggestions_sql("_sug_reviewed" if skip_reviewed else None),
                       [min_score])
        if rows:
            ws.execute("CREATE OR REPLACE TEMP TABLE _sug_pairs AS SELECT DISTINCT person_a, "
                       "person_b FROM (" + sql.suggestions_sql(None) + ")", [min_score])
            names = {(r["person_a"], r["person_b"]): r["name_key"]
                     for r in ws.rows(sql.shared_names_sql())}
            for row in rows:
                row["shared_name"] = names.get((row["person_a"], row["person_b"]))
        return rows, reviewed
    finally:
        for name in ws.tables_like("_sug_"):
            ws.execute(f"DROP TABLE IF EXISTS {name}")


def group_suggestions(rows: list[dict], reveal: bool = False) -> list[dict]:
    """Evidence rows → one suggestion per pair (rows arrive ordered by score, pair)."""
    out: list[dict] = []
    for row in rows:
        pair = (row["person_a"], row["person_b"])
        if not out or (out[-1]["a"], out[-1]["b"]) != pair:
            out.append({"a": pair[0], "b": pair[1], "score": row["score"], "evidence": []})
            if row.get("shared_name"):
                out[-1]["name"] = pii.shown("name", row["shared_name"], reveal)
        kind = _VALUE_KIND[row["kind"]]
        out[-1]["evidence"].append({
            "kind": row["kind"], "detail": row["detail"], "weight": row["weight"],
            "names": row["names"],
            "a": {"source": row["source_a"], "lead_id": row["lead_id_a"],
                  "value": pii.shown(kind, row["value_a"], reveal)},
            "b": {"source": row["source_b"], "lead_id": row["lead_id_b"],
                  "value": pii.shown(kind, row["value_b"], reveal)}})
    return out


def suggest(ws: Workspace, config: IdentityConfig, rules_dir=None, *,
            min_score: float = DEFAULT_MIN_SCORE, limit: int | None = None,
            reveal: bool = False) -> dict:
    rows, reviewed = suggestion_rows(ws, config, rules_dir, min_score=min_score)
    suggestions = group_suggestions(rows, reveal)
    counts = {kind: sum(1 for r in reviewed if r[2] == kind)
              for kind in ("must_link", "cannot_link")}
    return {"suggestions": suggestions[:limit] if limit else suggestions,
            "total": len(suggestions), "min_score": min_score, "reviewed": counts}


# -- accept / reject -----------------------------------------------------------------------

def parse_pair(text: str) -> tuple[str, str]:
    """`P1a2b3c4d5e6f:P0f9e8d7c6b5a` (or with a comma) → the two person ids, sorted."""
    match = _PAIR.fullmatch(text)
    if not match or not all(looks_like_person_id(p) for p in match.groups()):
        raise UsageError(f"PAIR {text!r} must be two person ids joined by ':', as "
                         "`leadctl identity suggest` prints them (e.g. "
                         "P1a2b3c4d5e6f:P0f9e8d7c6b5a)")
    a, b = (canonical_person_id(p) for p in match.groups())
    if a == b:
        raise UsageError(f"PAIR {text!r} names the same person twice")
    return (a, b) if a < b else (b, a)


def _current(ws: Workspace, person: str) -> str:
    """A person id, or the person a retired id was merged into."""
    found = ws.scalar("SELECT person_id FROM persons WHERE person_id = ?", [person]) or \
        ws.scalar("SELECT person_id FROM person_aliases WHERE old_person_id = ?", [person])
    if found is None:
        raise NotFound(f"no person {person} (run `leadctl identity suggest` again for "
                       "current ids)")
    return found


def review(ws: Workspace, config: IdentityConfig, rules_dir: Path, kind: str, *,
           pairs: list[str] | None = None, all_above: float | None = None,
           reason: str | None = None, by: str | None = None) -> dict:
    """Accept (`must_link`) or reject (`cannot_link`) suggestions: appends one override per
    pair to rules/identity_overrides.yaml; returns what was written."""
    if not pairs and all_above is None:
        raise UsageError("name the pairs to review (PERSON_A:PERSON_B)"
                         + (" or give --all-above S" if kind == "must_link" else ""))
    wanted: list[tuple[str, str]] = []
    for text in pairs or []:
        a, b = parse_pair(text)
        a, b = sorted((_current(ws, a), _current(ws, b)))
        if a == b:
            raise UsageError(f"{text}: these ids are one person already")
        wanted.append((a, b))
    rows, reviewed = suggestion_rows(ws, config, rules_dir, skip_reviewed=False)
    by_pair = {(s["a"], s["b"]): s for s in group_suggestions(rows, reveal=False)}
    by_leads = {(a, b) for a, b, _, how in reviewed if how == "leads"}
    done = {(a, b) for a, b, _, _ in reviewed}
    open_pairs = {p for p in by_pair if p not in done}
    for pair in wanted:
        if pair not in by_pair:
            raise NotFound(f"{pair[0]}:{pair[1]} is not a suggested match (see `leadctl "
                           "identity suggest --min-score 0`); to link or separate any two "
                           "leads use `leadctl identity link / unlink`")
        if pair in by_leads:
            raise UsageError(f"{pair[0]}:{pair[1]} was reviewed already (an override in "
                             f"{OVERRIDES_FILE} or identity.yaml names both persons); the "
                             "next `leadctl resolve` applies it")
        if pair not in open_pairs:
            raise UsageError(f"{pair[0]}:{pair[1]} was reviewed already (an override in "
                             f"{OVERRIDES_FILE} or identity.yaml judged the evidence it "
                             "rests on: it names one of its leads and the lead whose value "
                             "the other matches); to link or separate them anyway use "
                             "`leadctl identity link / unlink`")
    if all_above is not None:
        wanted += [p for p, s in by_pair.items()
                   if s["score"] >= all_above and p in open_pairs and p not in wanted]
    chosen = [by_pair[p] for p in dict.fromkeys(wanted)]
    if not chosen:
        return {"kind": kind, "written": [], "file": None}
    # The leads the suggestion's strongest evidence is between (its first row, as shown
    # first): the override binds the leads that matched, so a later split that parts a
    # person's other leads from them leaves the pair reviewed (reviewed_pairs_sql maps
    # these very leads to their persons, and their values to the evidence) — not the
    # persons' earliest leads.
    evidence_leads = {}
    for row in rows:
        evidence_leads.setdefault((row["person_a"], row["person_b"]), row)
    verb = "accepted" if kind == "must_link" else "rejected"
    entries = []
    for s in chosen:
        why = reason or (f"suggested match {verb} (score {s['score']}: "
                         + ", ".join(e["kind"] + " " + e["detail"] for e in s["evidence"]) + ")")
        row = evidence_leads[(s["a"], s["b"])]
        leads = sorted(({"source": row[f"source_{x}"], "lead_id": row[f"lead_id_{x}"],
                         "first": (row[f"created_at_{x}"], row[f"source_{x}"],
                                   row[f"lead_id_{x}"])} for x in ("a", "b")),
                       key=lambda r: (r["first"][0] is None, str(r["first"][0]),
                                      *r["first"][1:]))  # the older lead first
        entries.append(override_entry(kind, leads=leads, reason=why, by=by, at=ws.now()))
    path = append_overrides(rules_dir, entries)
    return {"kind": kind, "file": str(path),
            "written": [{"a": s["a"], "b": s["b"], "score": s["score"], "leads": e["leads"],
                         "reason": pii.mask_text(e["reason"])}
                        for s, e in zip(chosen, entries, strict=True)]}
