"""`leadctl audience export`: the persons matching an expression, each with a variant
assigned deterministically from (person id, seed), recorded as an experiment.

Assignment (pure SQL, `assign_sql`): bucket = the first 8 hex digits of
md5(person_id || ':' || seed) as an integer, mod 10000 — md5 is the same in every engine
and version (DuckDB's `hash()` is not), and the hex digits are read with substr/strpos
arithmetic rather than an engine's hex cast, so a re-export with the same seed gives
every person the same variant on any engine. Buckets [0, holdout) are the holdout
(variant `holdout`); the rest is cut into the variants by their cumulative weights
(weights are relative: A:1,B:3 is 25% / 75% of what the holdout leaves). `bucket_plan`
turns a split into bucket ranges.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal

from leadctl import pii
from leadctl.errors import UsageError
from leadctl.identity.lookup import earliest_leads_sql
from leadctl.sqltext import literal

BUCKETS = 10_000
HOLDOUT = "holdout"
DEFAULT_VARIANTS = "A:50,B:50"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
# A weight or share as written in a spec: ASCII digits, a point, an exponent (Python's
# float() also takes `1_0`, other scripts' digits, `nan` and `inf`: a typo is refused).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _number(text: str) -> Decimal | None:
    """A plain decimal number, exactly (1e-400 is not 0), or None."""
    text = text.strip()
    return Decimal(text) if _NUMBER.fullmatch(text) else None
MAX_EXPERIMENT_NAME = 100


@dataclass(frozen=True)
class Arm:
    """One variant (or the holdout) with its weight and its buckets [lo, hi)."""

    variant: str
    weight: float
    lo: int
    hi: int

    @property
    def share(self) -> float:
        return (self.hi - self.lo) / BUCKETS

    def to_dict(self) -> dict:
        return {"variant": self.variant, "weight": self.weight, "share": self.share,
                "buckets": [self.lo, self.hi]}


def parse_variants(text: str | None) -> list[tuple[str, float]]:
    """`A:50,B:50` → [("A", 50.0), ("B", 50.0)]; weights relative, > 0; names unique."""
    text = DEFAULT_VARIANTS if text is None else text
    variants: list[tuple[str, float]] = []
    for part in text.split(","):
        name, colon, weight = part.strip().partition(":")
        name = name.strip()
        if not colon:
            raise UsageError(f"--variants: {part.strip()!r} is not NAME:WEIGHT "
                             f"(e.g. {DEFAULT_VARIANTS})")
        if not _NAME.fullmatch(name):
            raise UsageError(f"--variants: {name!r} is not a variant name (letters, digits, "
                             "_ . -, up to 40 characters)")
        if name.lower() == HOLDOUT:
            raise UsageError("--variants: 'holdout' is reserved: use --holdout for a holdout")
        exact = _number(weight)
        if exact is None:
            raise UsageError(f"--variants: the weight of {name} must be a number, "
                             f"not {weight.strip()!r}")
        value = float(exact)
        if not (math.isfinite(value) and exact > 0):
            raise UsageError(f"--variants: the weight of {name} must be "
                             f"{'more than 0' if math.isfinite(value) else 'a finite number'}, "
                             f"not {weight.strip()!r}")
        if value == 0:  # 1e-400: more than 0, but no float
            raise UsageError(f"--variants: the weight of {name} is too small to compare, "
                             f"not {weight.strip()!r}")
        if any(name == seen for seen, _ in variants):
            raise UsageError(f"--variants: {name} is listed twice")
        variants.append((name, value))
    if not math.isfinite(sum(w for _, w in variants)):  # 1e308 each: shares from their ratios
        largest = max(w for _, w in variants)
        variants = [(name, w / largest) for name, w in variants]
    return variants


def parse_holdout(text: str | None) -> float:
    """`10%` or `0.1` → 0.1; from 0 up to (not including) 1."""
    if text is None:
        return 0.0
    raw = text.strip()
    exact = _number(raw[:-1] if raw.endswith("%") else raw)
    if exact is not None and raw.endswith("%"):
        exact /= 100
    if exact is None or exact.is_signed() or not 0 <= exact < 1:  # -0% too: a typo
        raise UsageError(f"--holdout must be a share like 10% or 0.1 (less than 100%), "
                         f"not {text!r}")
    if 0 < exact < Decimal(1) / (2 * BUCKETS):  # rounds to no bucket, or to no float at all
        raise UsageError(f"--holdout {text.strip()} is less than one bucket (0.01%)")
    return float(exact)


def bucket_plan(variants: list[tuple[str, float]], holdout: float) -> list[Arm]:
    """Bucket ranges: the holdout first, then each variant by cumulative weight."""
    arms: list[Arm] = []
    start = round(holdout * BUCKETS)
    if holdout > 0:
        if start == 0:
            raise UsageError(f"--holdout {holdout:g} is less than one bucket (0.01%)")
        arms.append(Arm(HOLDOUT, holdout, 0, start))
    total = sum(w for _, w in variants)
    cumulative = 0.0
    lo = start
    for name, weight in variants:
        cumulative += weight
        hi = start + round((BUCKETS - start) * cumulative / total)
        if hi <= lo:
            alone = (round(BUCKETS * cumulative / total)
                     - round(BUCKETS * (cumulative - weight) / total))
            if start and alone > 0:  # room enough without the holdout: the holdout's fault
                raise UsageError(f"--holdout {holdout * 100:g}% leaves {name} less than one "
                                 "bucket (0.01%)")
            raise UsageError(f"--variants: {name} gets less than one bucket (0.01%)")
        arms.append(Arm(name, weight, lo, hi))
        lo = hi
    return arms


def choose_control(arms: list[Arm], control: str | None) -> str:
    """The first listed variant, or `control` (a variant, or the holdout when there is
    one); with a single variant and a holdout, the holdout."""
    names = [a.variant for a in arms]
    variants = [n for n in names if n != HOLDOUT]
    if control is not None:
        if control not in names:
            raise UsageError(f"--control {control!r} is not one of {', '.join(names)}")
        return control
    if len(variants) == 1:
        if HOLDOUT not in names:
            raise UsageError("an experiment needs two arms: give two variants "
                             "(--variants A:50,B:50) or a --holdout")
        return HOLDOUT
    return variants[0]


def check_name(name: str) -> str:
    if not name.strip() or any(ord(c) < 32 for c in name) or len(name) > MAX_EXPERIMENT_NAME:
        raise UsageError(f"NAME must be a non-empty name without control characters, up to "
                         f"{MAX_EXPERIMENT_NAME} characters, not {name!r}")
    return name


@dataclass(frozen=True)
class AudienceSpec:
    name: str
    expression: str
    start: dt.date
    seed: str
    arms: list[Arm]
    control: str
    holdout: float
    goal: str | None

    @classmethod
    def parse(cls, name: str, expression: str, *, start: dt.date, variants: str | None,
              holdout: str | None, seed: str | None, control: str | None,
              goal: str | None) -> AudienceSpec:
        """Checks every option (UsageError, exit 2); the seed defaults to the name."""
        check_name(name)
        share = parse_holdout(holdout)
        arms = bucket_plan(parse_variants(variants), share)
        if seed is not None and (not seed or any(ord(c) < 32 for c in seed)):
            raise UsageError(f"--seed must be a non-empty text without control characters, "
                             f"not {seed!r}")
        if goal is not None and not goal.strip():
            raise UsageError("--goal must name an event type, e.g. register")
        return cls(name, expression, start, name if seed is None else seed, arms,
                   choose_control(arms, control), share, goal)


# -- SQL builders (pure) ------------------------------------------------------------------

HEX_DIGITS = "0123456789abcdef"


def hex_int_sql(hex_sql: str, digits: int = 8) -> str:
    """The integer value of the first `digits` hex digits of `hex_sql` (lower case), in
    plain SQL every engine has (substr, strpos): no engine-specific hex cast."""
    terms = [f"CAST(strpos({literal(HEX_DIGITS)}, substr({hex_sql}, {i + 1}, 1)) - 1 "
             f"AS BIGINT) * {16 ** (digits - 1 - i)}" for i in range(digits)]
    return "(" + " + ".join(terms) + ")"


def bucket_sql(hash_sql: str) -> str:
    """Bucket 0..9999 of an md5 hex digest: its first 32 bits mod 10000."""
    return f"({hex_int_sql(hash_sql)} % {BUCKETS})"


def hash_sql(id_sql: str, seed: str) -> str:
    return f"md5({id_sql} || ':' || {literal(seed)})"


def variant_sql(bucket: str, arms: list[Arm]) -> str:
    cases = " ".join(f"WHEN {bucket} < {a.hi} THEN {literal(a.variant)}" for a in arms)
    return f"CASE {cases} END"


def assign_sql(persons_sql: str, seed: str, arms: list[Arm]) -> str:
    """(person_id, bucket, variant) of every person of `persons_sql` (a query with a
    person_id column)."""
    return (f"SELECT person_id, bucket, {variant_sql('bucket', arms)} AS variant\n"
            f"FROM (SELECT person_id, {bucket_sql('h')} AS bucket\n"
            f"      FROM (SELECT person_id, {hash_sql('person_id', seed)} AS h\n"
            f"            FROM ({persons_sql}) AS matched) AS hashed) AS bucketed")


def insert_members_sql(name: str, persons_sql: str, seed: str, arms: list[Arm]) -> str:
    """The members with their variants, each anchored to its earliest lead (source, lead
    id: `earliest_leads_sql`, the lead an identity override names a person by), which
    `report ab` follows to the person holding it now, across merges and splits."""
    anchors = earliest_leads_sql("SELECT person_id FROM assigned")
    return (f"INSERT INTO experiment_members (name, person_id, bucket, variant, "
            f"anchor_source, anchor_lead_id)\n"
            f"WITH assigned AS ({assign_sql(persons_sql, seed, arms)})\n"
            f"SELECT {literal(name)}, a.person_id, a.bucket, a.variant, e.source, e.lead_id\n"
            f"FROM assigned a LEFT JOIN ({anchors}) AS e ON e.person_id = a.person_id")


def member_counts_sql(name: str) -> str:
    return (f"SELECT variant, count(*) AS persons FROM experiment_members "
            f"WHERE name = {literal(name)} GROUP BY variant")


CONTACTS = ("name", "phone", "email", "wechat")


def members_file_sql(name: str, *, reveal: bool) -> str:
    """The audience file: person_id, variant, bucket and contacts (masked unless reveal);
    holdout rows carry no contacts, so that nobody in the holdout is contacted by mistake."""
    cols = []
    for column in CONTACTS:
        value = f"p.{column}" if reveal else pii.mask_sql(column, f"p.{column}")
        cols.append(f"CASE WHEN m.variant = {literal(HOLDOUT)} THEN NULL ELSE {value} END "
                    f"AS {column}")
    return (f"SELECT m.person_id, m.variant, m.bucket, {', '.join(cols)}\n"
            "FROM experiment_members m LEFT JOIN persons p ON p.person_id = m.person_id\n"
            f"WHERE m.name = {literal(name)}\nORDER BY m.person_id")


# -- recording ----------------------------------------------------------------------------

def existing(ws, name: str) -> dict | None:
    rows = ws.rows("SELECT name, created_at, created_by FROM experiments WHERE name = ?",
                   [name])
    return rows[0] if rows else None


def record_audience(ws, spec: AudienceSpec, persons_sql: str, *, user: str,
                    replace: bool = False) -> dict:
    """Stores the experiment and its members (`persons_sql`: the matching persons)."""
    old = existing(ws, spec.name)
    if old is not None and not replace:
        raise UsageError(f"experiment {spec.name!r} already exists (created "
                         f"{str(old['created_at'])[:19]} by {old['created_by']}): pick "
                         "another name, or --replace to redefine it")
    ws.execute("DELETE FROM experiment_members WHERE name = ?", [spec.name])
    ws.execute("DELETE FROM experiments WHERE name = ?", [spec.name])
    ws.execute(insert_members_sql(spec.name, persons_sql, spec.seed, spec.arms))
    counts = {r["variant"]: int(r["persons"]) for r in ws.rows(member_counts_sql(spec.name))}
    persons = sum(counts.values())
    ws.execute(
        "INSERT INTO experiments (name, kind, created_at, created_by, run_id, expression, "
        "starts_on, seed, variants, control, holdout, goal, persons) "
        "VALUES (?, 'audience', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [spec.name, ws.now(), user, ws.run_id, spec.expression, spec.start, spec.seed,
         json.dumps([a.to_dict() for a in spec.arms]), spec.control, spec.holdout, spec.goal,
         persons])
    return {"experiment": spec.name, "expr": spec.expression, "start": spec.start.isoformat(),
            "seed": spec.seed, "control": spec.control, "holdout": spec.holdout,
            "goal": spec.goal, "created_by": user, "persons": persons, "replaced": old is not None,
            "variants": [{"variant": a.variant, "planned": a.share,
                          "persons": counts.get(a.variant, 0)} for a in spec.arms]}
