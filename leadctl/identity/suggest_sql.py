"""SQL builders of `leadctl identity suggest`: pairs of persons that share no linking value
but are probably one person (pure functions: inputs → SQL text; identity/suggest.py runs
them).

Evidence, each found through a blocking key (rows meet only rows with the same key; never
all pairs):
- `phone_typo`: two phone values one edit apart — a digit different, two adjacent digits
  swapped, or a digit missing/extra (also an invalid 10-digit number against a valid
  one). Key: the number with one digit deleted (each position), plus the number itself
  (deletion neighbourhood), verified by `damerau_levenshtein(a, b) = 1`.
- `email_domain_typo`: the same mailbox (MIN_MAILBOX characters or more) at a common mail
  domain and at a domain one edit from it (`qq.con`, `163.co`, `gmial.com`). Key: mailbox
  @ canonical domain; a typo one edit from two common domains has a key for each.
- `device_id_format`: device ids equal once case and separators (`-`, `:`, `_`, spaces,
  braces) are dropped. Key: that form (12 characters or more).
- `id_card`: the same name and an ID card with the same birth date (digits 7–14) and sex
  (digit 17), at least one of the two cards failing its check digit (two valid different
  cards are two people). Key: (name, birth date, sex).

Names (`name_key`): the lead's name without spaces, lower-case; names shorter than two
characters and bare honorifics (王先生, 李女士, 张小姐) are not names here. Two persons
have "the same name" when they share a name key; they "conflict" when both have names
and share none.

Weights (score = 1 − Π(1 − weight) over the pair's evidence kinds, 2 decimals):

| kind | same name | a side without a name | different names |
|---|---|---|---|
| phone_typo | 0.9 | 0.6 when the golden cities agree, else not suggested | not suggested |
| id_card, cards one character apart | 0.9 | (name required) | (name required) |
| id_card, birth date and sex only | 0.7 | (name required) | (name required) |
| email_domain_typo | 0.9 | 0.9 | 0.6 |
| device_id_format | 0.9 | 0.9 | 0.6 |

A pair whose persons both have valid ID cards and share none is never suggested. Values
that do not link for good reasons (blocked, capped) are never evidence, nor is a key
carried by more records than the cap of its identifier type.

Reviewed pairs (reviewed_pairs_sql): an override entry (must_link or cannot_link) naming
two leads X and Y reviews a pair of persons when one holds X and the other Y, or when a
piece of the pair's evidence is between X itself and the value Y carried (the same type
and the same two values as compared here, whatever Y's status now, say cut): the evidence
the reviewer judged, now pointing at the person that kept Y's value after a split.
"""

from __future__ import annotations

from leadctl.sqltext import literal

COMMON_MAIL_DOMAINS = (
    "qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "hotmail.com", "sina.com",
    "sina.cn", "sohu.com", "foxmail.com", "yeah.net", "139.com", "aliyun.com", "icloud.com",
    "yahoo.com", "live.com", "msn.com")
HONORIFICS = ("先生", "女士", "小姐")
MIN_DEVICE_KEY = 12
MIN_MAILBOX = 3

WEIGHTS = {  # kind → (same name, a side without a name, different names); None: dropped
    "phone_typo": (0.9, 0.6, None),
    "id_card_near": (0.9, None, None),
    "id_card": (0.7, None, None),
    "email_domain_typo": (0.9, 0.9, 0.6),
    "device_id_format": (0.9, 0.9, 0.6),
}
EVIDENCE_KINDS = {"id_card_near": "id_card"}  # detail variants reported under one kind
EVIDENCE_TYPES = {"phone_typo": "phone", "email_domain_typo": "email",
                  "device_id_format": "device_id", "id_card": "id_card"}  # kind → id_type

# Working tables (TEMP, dropped after use).
T = {name: f"_sug_{name}" for name in ("leads", "names", "cards", "raw", "evidence")}


def name_key_sql(expr: str) -> str:
    """A lead's name as compared here: no spaces (full-width too), lower-case; NULL when
    shorter than two characters or a bare honorific."""
    key = f"lower(regexp_replace(coalesce({expr}, ''), '[\\s\\x{{3000}}]+', '', 'g'))"
    honorific = "(" + "|".join(HONORIFICS) + ")$"
    return (f"(CASE WHEN length({key}) >= 2 AND NOT regexp_matches({key}, "
            f"{literal('^.' + honorific)}) THEN {key} END)")


def _persons_filter(persons: list[str] | None, column: str) -> str:
    if persons is None:
        return ""
    return f" AND {column} IN ({', '.join(literal(p) for p in persons) or 'NULL'})"


def leads_sql(persons: list[str] | None = None) -> list[str]:
    """`_sug_leads(lead_key, person_id, source, lead_id, name_key)`, `_sug_names(person_id,
    name_key)` and `_sug_cards(person_id)`: persons with a valid ID card (and which)."""
    where = _persons_filter(persons, "pl.person_id")
    return [
        f"""CREATE OR REPLACE TEMP TABLE {T['leads']} AS
        SELECT l.lead_key, pl.person_id, l.source, l.lead_id, {name_key_sql('l.name')} AS name_key
        FROM leads l JOIN person_leads pl ON pl.lead_key = l.lead_key WHERE true{where}""",
        f"""CREATE OR REPLACE TEMP TABLE {T['names']} AS
        SELECT DISTINCT person_id, name_key FROM {T['leads']} WHERE name_key IS NOT NULL""",
        f"""CREATE OR REPLACE TEMP TABLE {T['cards']} AS
        SELECT DISTINCT s.person_id, li.value FROM lead_identifiers li
        JOIN {T['leads']} s ON s.lead_key = li.lead_key
        WHERE li.id_type = 'id_card' AND li.status = 'ok'""",
    ]


def text_sql(li: str = "li") -> str:
    """The form of a `lead_identifiers` row (alias `li`) that evidence compares: phone
    digits without +86 (a number without a normalised value, i.e. invalid: its digits
    when it has no letters), e-mail and device id as normalised, an ID card upper-case
    without spaces."""
    phone_digits = f"regexp_replace({li}.raw_value, '[\\s\\-().+]', '', 'g')"
    return f"""CASE {li}.id_type
                WHEN 'phone' THEN CASE
                    WHEN {li}.value IS NOT NULL AND starts_with({li}.value, '+86')
                    THEN substr({li}.value, 4)
                    WHEN {li}.value IS NOT NULL THEN substr({li}.value, 2)
                    WHEN regexp_full_match({phone_digits}, '(0086|86)?1[0-9]{{9,10}}')
                    THEN regexp_replace({phone_digits}, '^(0086|86)(1[0-9]{{9,10}})$', '\\2')
                    END
                WHEN 'id_card' THEN upper(regexp_replace(coalesce({li}.value, {li}.raw_value),
                                                         '\\s', '', 'g'))
                ELSE {li}.value END"""


def raw_values_sql() -> str:
    """`_sug_raw(lead_key, person_id, id_type, status, value, records, text)`: the phone,
    e-mail, device id and ID card rows that may be evidence (linking or invalid, never
    blocked or capped), `text` the form compared (text_sql)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {T['raw']} AS
        SELECT * FROM (
            SELECT li.lead_key, s.person_id, li.id_type, li.status, li.value, li.records,
                {text_sql()} AS text
            FROM lead_identifiers li JOIN {T['leads']} s ON s.lead_key = li.lead_key
            WHERE li.id_type IN ('phone', 'email', 'device_id', 'id_card')
              AND (li.status = 'ok' OR (li.status = 'invalid'
                                        AND li.id_type IN ('phone', 'id_card'))))
        WHERE text IS NOT NULL"""


def _pairs(kind: str, detail: str, source: str, key: str, extra_where: str = "") -> str:
    """Evidence rows from `source` (lead_key, person_id, value, text, key...) where two
    leads of different persons share `key` and their texts differ."""
    return f"""
        SELECT '{kind}' AS kind, {detail} AS detail,
            a.lead_key AS lead_a, b.lead_key AS lead_b, a.person_id AS person_a,
            b.person_id AS person_b, a.shown AS value_a, b.shown AS value_b,
            a.text AS text_a, b.text AS text_b
        FROM {source} a JOIN {source} b ON a.{key} = b.{key} AND a.person_id < b.person_id
          AND a.text <> b.text{extra_where}"""


def _within_cap(source: str, cap: int, also: str = "true") -> str:
    """The rows of `source` whose blocking `key` no more than `cap` rows carry (and that
    meet `also`)."""
    return (f"SELECT * FROM {source} WHERE {also} AND key IN (SELECT key FROM {source} "
            f"GROUP BY key HAVING count(*) <= {int(cap)})")


def evidence_sql(caps: dict[str, int]) -> str:
    """`_sug_evidence(kind, detail, lead_a, lead_b, person_a, person_b, value_a, value_b,
    text_a, text_b)` (person_a < person_b): every piece of evidence between two persons
    (`value`: as shown, `text`: as compared). `caps`: per
    identifier type (phone, email, device_id, id_card) the most records a blocking key
    may carry to be evidence (identity.yaml's cap for that type)."""
    domains = ", ".join(f"({literal(d)})" for d in COMMON_MAIL_DOMAINS)
    raw = T["raw"]
    return f"""
        CREATE OR REPLACE TEMP TABLE {T['evidence']} AS
        WITH phones AS (
            SELECT lead_key, person_id, text, coalesce(value, text) AS shown FROM {raw}
            WHERE id_type = 'phone' AND length(text) BETWEEN 8 AND 15),
        phone_texts AS (SELECT text, count(*) AS records FROM phones GROUP BY text),
        all_variants AS (
            SELECT text, records, text AS variant FROM phone_texts
            UNION
            SELECT text, records, left(text, i - 1) || substr(text, i + 1) AS variant
            FROM phone_texts, range(1, 16) r(i) WHERE i <= length(text)),
        shared_variants AS (  -- a key carried by more records than the cap is no evidence
            SELECT variant FROM all_variants GROUP BY variant
            HAVING count(*) > 1 AND sum(records) <= {int(caps["phone"])}),
        variants AS (
            SELECT text, variant FROM all_variants
            WHERE variant IN (SELECT variant FROM shared_variants)),
        near AS (
            SELECT DISTINCT a.text AS text_a, b.text AS text_b
            FROM variants a JOIN variants b ON a.variant = b.variant AND a.text <> b.text
            WHERE damerau_levenshtein(a.text, b.text) = 1),
        phone_pairs AS (
            SELECT 'phone_typo' AS kind,
                CASE WHEN length(n.text_a) <> length(n.text_b) THEN 'a digit missing'
                     WHEN hamming(n.text_a, n.text_b) = 1 THEN 'one digit different'
                     ELSE 'two adjacent digits swapped' END AS detail,
                a.lead_key AS lead_a, b.lead_key AS lead_b, a.person_id AS person_a,
                b.person_id AS person_b, a.shown AS value_a, b.shown AS value_b,
                a.text AS text_a, b.text AS text_b
            FROM near n JOIN phones a ON a.text = n.text_a JOIN phones b ON b.text = n.text_b
            WHERE a.person_id < b.person_id),
        emails AS (
            SELECT r.lead_key, r.person_id, r.text, r.text AS shown,
                regexp_extract(r.text, '^(.*)@', 1) AS mailbox,
                regexp_extract(r.text, '@([^@]+)$', 1) AS domain
            FROM {raw} r WHERE r.id_type = 'email' AND r.status = 'ok'),
        common(domain) AS (VALUES {domains}),
        canonical AS (  -- a typo one edit from two common domains is keyed under both
            SELECT d.domain, c.domain AS canonical
            FROM (SELECT DISTINCT domain FROM emails) d
            JOIN common c ON c.domain = d.domain OR (
                damerau_levenshtein(c.domain, d.domain) = 1
                AND d.domain NOT IN (SELECT domain FROM common))),
        email_keys AS (
            SELECT e.*, e.mailbox || '@' || c.canonical AS key, c.canonical = e.domain AS exact
            FROM emails e JOIN canonical c ON c.domain = e.domain
            WHERE length(e.mailbox) >= {MIN_MAILBOX}),
        email_ok AS ({_within_cap("email_keys", caps["email"])}),
        devices AS (
            SELECT lead_key, person_id, text, text AS shown,
                regexp_replace(text, '[\\s\\-:_{{}}.]', '', 'g') AS key
            FROM {raw} WHERE id_type = 'device_id'),
        device_ok AS ({_within_cap("devices", caps["device_id"],
                                   f"length(key) >= {MIN_DEVICE_KEY}")}),
        cards AS (
            SELECT r.lead_key, r.person_id, r.text, r.text AS shown, r.status,
                n.name_key || '|' || substr(r.text, 7, 8) || '|'
                    || CAST(CAST(substr(r.text, 17, 1) AS INTEGER) % 2 AS VARCHAR) AS key
            FROM {raw} r JOIN {T['names']} n ON n.person_id = r.person_id
            WHERE r.id_type = 'id_card' AND regexp_full_match(r.text, '[0-9]{{17}}[0-9X]')),
        cards_ok AS ({_within_cap("cards", caps["id_card"])}),
        card_pairs AS (
            SELECT DISTINCT * FROM ({_pairs(
                'id_card',
                "CASE WHEN damerau_levenshtein(a.text, b.text) = 1 THEN 'one character off' "
                "ELSE 'same birth date and sex' END",
                'cards_ok', 'key', " AND (a.status = 'invalid' OR b.status = 'invalid')")}))
        SELECT * FROM phone_pairs
        UNION ALL SELECT DISTINCT * FROM ({_pairs('email_domain_typo',
                                                  "'same mailbox, domain typo'", 'email_ok',
                                                  'key', ' AND NOT (a.exact AND b.exact)')})
        UNION ALL SELECT * FROM ({_pairs('device_id_format',
                                         "'same id but for case and separators'",
                                         'device_ok', 'key')})
        UNION ALL SELECT * FROM card_pairs"""


def _weight_sql(names: str) -> str:
    """The weight of one evidence row given `names`: same | nameless | different."""
    arms = []
    for kind, (same, nameless, different) in WEIGHTS.items():
        match = ("e.kind = 'id_card' AND e.detail = 'one character off'" if kind == "id_card_near"
                 else f"e.kind = '{kind}'")
        for label, weight in (("same", same), ("nameless", nameless), ("different", different)):
            if weight is None:
                continue
            condition = f"{names} = '{label}'"
            if kind == "phone_typo" and label == "nameless":
                condition += " AND n.same_city"
            arms.append(f"WHEN {match} AND {condition} THEN {weight}")
    return "CAST(CASE " + " ".join(arms) + " END AS DOUBLE)"


def suggestions_sql(reviewed: str | None = None) -> str:
    """One row per (pair, evidence kind): person_a, person_b, kind, detail, weight, the
    two leads (source, lead_id, created_at) and values shown, names (same | nameless |
    different), the pair's score; pairs in `reviewed(person_a, person_b)` and pairs with conflicting
    valid ID cards are left out. Ordered by score, then the pair, then the kind."""
    skip = (f" AND NOT EXISTS (SELECT 1 FROM {reviewed} r WHERE r.person_a = e.person_a "
            "AND r.person_b = e.person_b)") if reviewed else ""
    return f"""
        WITH pairs AS (SELECT DISTINCT person_a, person_b FROM {T['evidence']}),
        -- Names and cards are matched within the pairs only: a join of every two persons
        -- sharing a name (20M rows at 1M leads) is quadratic in the commonest name.
        same_name AS ({shared_names_sql('pairs')}),
        same_card AS (
            SELECT DISTINCT p.person_a, p.person_b
            FROM pairs p JOIN {T['cards']} x ON x.person_id = p.person_a
            JOIN {T['cards']} y ON y.person_id = p.person_b AND y.value = x.value),
        named AS (
            SELECT p.person_a, p.person_b,
                CASE WHEN sn.person_a IS NOT NULL THEN 'same'
                     WHEN NOT EXISTS (SELECT 1 FROM {T['names']} x WHERE x.person_id = p.person_a)
                       OR NOT EXISTS (SELECT 1 FROM {T['names']} y WHERE y.person_id = p.person_b)
                     THEN 'nameless' ELSE 'different' END AS names,
                coalesce(pa.city = pb.city, false) AS same_city,
                EXISTS (SELECT 1 FROM {T['cards']} c WHERE c.person_id = p.person_a)
                AND EXISTS (SELECT 1 FROM {T['cards']} c WHERE c.person_id = p.person_b)
                AND sc.person_a IS NULL AS card_conflict
            FROM pairs p LEFT JOIN persons pa ON pa.person_id = p.person_a
            LEFT JOIN persons pb ON pb.person_id = p.person_b
            LEFT JOIN same_name sn ON sn.person_a = p.person_a AND sn.person_b = p.person_b
            LEFT JOIN same_card sc ON sc.person_a = p.person_a AND sc.person_b = p.person_b),
        weighted AS (
            SELECT e.*, n.names, {_weight_sql('n.names')} AS weight
            FROM {T['evidence']} e JOIN named n
              ON n.person_a = e.person_a AND n.person_b = e.person_b
            WHERE NOT n.card_conflict{skip}),
        best AS (  -- one row per (pair, kind): its strongest, then first, evidence
            SELECT * FROM weighted WHERE weight IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY person_a, person_b, kind
                                       ORDER BY weight DESC, detail, lead_a, lead_b) = 1),
        scored AS (
            SELECT *, round(1 - product(1 - weight) OVER (PARTITION BY person_a, person_b), 2)
                AS score FROM best)
        SELECT s.person_a, s.person_b, s.score, s.kind, s.detail, s.weight, s.names,
            la.source AS source_a, la.lead_id AS lead_id_a, s.value_a,
            lb.source AS source_b, lb.lead_id AS lead_id_b, s.value_b,
            la.created_at AS created_at_a, lb.created_at AS created_at_b
        FROM scored s JOIN leads la ON la.lead_key = s.lead_a
        JOIN leads lb ON lb.lead_key = s.lead_b
        WHERE s.score >= ?
        ORDER BY s.score DESC, s.person_a, s.person_b, s.weight DESC, s.kind"""


def shared_names_sql(pairs: str = "_sug_pairs") -> str:
    """(person_a, person_b, name_key) of the pairs of `pairs` whose persons carry a name
    both: the first such name (for the evidence shown)."""
    return f"""
        SELECT p.person_a, p.person_b, min(x.name_key) AS name_key
        FROM {pairs} p JOIN {T['names']} x ON x.person_id = p.person_a
        JOIN {T['names']} y ON y.person_id = p.person_b AND y.name_key = x.name_key
        GROUP BY p.person_a, p.person_b"""


def override_persons_sql(entries: str) -> str:
    """(entry, kind, person_id) of the leads each override entry names (`entries(entry,
    kind, source, lead_id)`; a NULL source: the lead id in any source)."""
    return f"""
        SELECT DISTINCT e.entry, e.kind, pl.person_id
        FROM {entries} e JOIN leads l ON l.lead_id = e.lead_id
             AND (e.source IS NULL OR l.source = e.source)
        JOIN person_leads pl ON pl.lead_key = l.lead_key"""


def override_values_sql(target: str, entries: str) -> str:
    """`target(entry, kind, lead_key, id_type, text)`: the phone, e-mail, device id and ID
    card values of the leads each override entry names (`entries(entry, kind, source,
    lead_id)`), whatever their status now (a value a cannot_link cut too), in the form
    evidence compares (text_sql)."""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT * FROM (
            SELECT DISTINCT e.entry, e.kind, l.lead_key, li.id_type, {text_sql()} AS text
            FROM {entries} e JOIN leads l ON l.lead_id = e.lead_id
                 AND (e.source IS NULL OR l.source = e.source)
            JOIN lead_identifiers li ON li.lead_key = l.lead_key
            WHERE li.id_type IN ('phone', 'email', 'device_id', 'id_card'))
        WHERE text IS NOT NULL"""


def reviewed_pairs_sql(target: str, entry_persons: str, override_values: str | None = None,
                       evidence: str = T["evidence"]) -> str:
    """`target(person_a, person_b, kind, how)`: the pairs an override entry reviewed
    (accepted or rejected), one row per pair and kind: `how` 'leads' when two leads of
    the entry fall in the two persons, else 'evidence' when a piece of the pair's
    `evidence` is between a lead X of the entry and the value another lead Y of the
    entry carries, on X's value (`override_values`, as override_values_sql: the very
    evidence the reviewer judged, whichever person holds Y's value now)."""
    types = " ".join(f"WHEN '{k}' THEN '{t}'" for k, t in EVIDENCE_TYPES.items())
    by_evidence = "" if override_values is None else f"""
        UNION ALL
        SELECT e.person_a, e.person_b, x.kind, 'evidence'
        FROM {evidence} e JOIN {override_values} x
          ON (x.lead_key = e.lead_a AND x.text = e.text_a)
             OR (x.lead_key = e.lead_b AND x.text = e.text_b)
        JOIN {override_values} y ON y.entry = x.entry AND y.lead_key <> x.lead_key
          AND y.id_type = x.id_type
          AND y.text = CASE WHEN x.lead_key = e.lead_a AND x.text = e.text_a
                            THEN e.text_b ELSE e.text_a END
        WHERE x.id_type = CASE e.kind {types} END"""
    return f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT person_a, person_b, kind,
            CASE WHEN bool_or(how = 'leads') THEN 'leads' ELSE 'evidence' END AS how
        FROM (
            SELECT a.person_id AS person_a, b.person_id AS person_b, a.kind, 'leads' AS how
            FROM {entry_persons} a JOIN {entry_persons} b
              ON a.entry = b.entry AND a.person_id < b.person_id{by_evidence}) AS reviewed
        GROUP BY person_a, person_b, kind"""
