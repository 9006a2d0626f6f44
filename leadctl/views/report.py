"""`leadctl report channels`: per channel (source or a UTM field) the lead volume, how
many distinct persons it brought, how much it duplicates other channels, its reject
rate, the grade mix, how much of it reached sales pools and how much sold.

Everything is as of one date (`leadctl.views.asof`: the last tag run's by default,
`--as-of` moves it): leads that arrived after the as-of day are not counted, nor do they
make another channel's lead a duplicate; grades and scores are the stored ones
(`as_of_differs` says when their as-of is another); pools are as of the as-of, rebuilt
from the assignment log as `find` and `portrait` read them (`routing.screens.
ownership_as_of_sql`; the stored ones at the default as-of, with `routing` in
`as_of_differs` when a rep action since is later).

Definitions (per value of the `--by` column; an empty value counts as `(none)`):
- leads: leads of the channel that arrived up to the as-of day (and on/after `--since`
  when given); a lead arrives at its created_at, or its file's ingest time when it has
  none (`arrival_ctes`);
- persons: distinct resolved persons of those leads;
- dup_rate: share of the channel's leads whose person also has leads from another
  channel that arrived up to the as-of day (before `--since` too: a lead from a person
  another channel already brought is a duplicate however old the other lead is);
- rejects / reject_rate: rejected lead rows of that source (rejected on/after `--since`),
  rejects / (leads + rejects); only with `--by source` (rejects carry no UTM fields);
- grade_<grade>, avg_score: the channel's persons by their current grade, one column per
  grade in `report_grades` order (grade_a..grade_d for the usual A-D), / score;
- sales_share: share of the channel's persons in a sales pool (as of the as-of);
- sold: the channel's persons with a sale made by the as-of day (sales table, a sale in
  the assignment log, or a lock from a sale in ownership, closed by then). A sale
  recorded under a person id that a later merge retired counts for the person the id went
  to (`current_person_sql`), here and in every amount below.

Channel value (issue 16; see `arrival_ctes`). A lead arrives at its created_at (its
file's ingest time when it has none); a person's leads are ordered by arrival, ties by
source, lead_id. Unresolved leads (no person yet) are in none of these counts.
- new_persons: leads that were their person's first lead (each counts one person);
- dup_other_source: leads whose person an earlier lead of another source had already
  brought; dup_from: {that earlier source: leads}, most first (the earliest earlier lead
  of another source names it); dup_same_source: leads whose person only this source
  had brought before (a vendor re-sending its own lead);
- new_to_sales, new_sold, new_sold_amount: first-touch outcomes, the headline: of the
  persons this channel brought first, those in a sales pool (as of the as-of), those
  sold, and their sales amount (sales table). Each person counts for one channel, so
  they add up to the total. sold_amount: the sales amount of every person the channel touched (like
  `sold`: a person counts for each of its channels);
- cost, costed_leads, cost_per_lead, cost_per_new: from rules/costs.yaml
  (campaigns/costs.py), entries of the `--by` dimension. An entry's cost is spread
  evenly over the channel's leads arriving in its period (up to the as-of); `cost` is
  the part of the leads in the report's scope (an entry without any lead counts in full
  when its period overlaps the scope), `costed_leads` those leads, cost_per_lead =
  cost / costed_leads, cost_per_new = cost / the costed leads that were new persons.
  NULL for a channel without entries; the total sums the channels that have them.

`--duplicates SOURCE -o FILE` (`duplicates_sql`): the leads of SOURCE, in the same scope,
that duplicate an earlier lead of another source (dup_other_source), with that lead
and the identifier values the two share directly — the evidence for a refund claim.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

from leadctl import pii
from leadctl.campaigns.costs import CHANNEL_DIMENSIONS, CostEntry, load_cost_rules
from leadctl.errors import UsageError
from leadctl.identity.lookup import ARRIVED_AT_SQL, changed_after_sql
from leadctl.routing.parse import load_routing_rules
from leadctl.routing.screens import has_state_reason, latest_action_sql, ownership_as_of_sql
from leadctl.rules.hints import one_of
from leadctl.scoring.parse import load_scoring_rules
from leadctl.sqlfn import avg_sql, round_sql
from leadctl.sqltext import date_literal, ident, literal, number
from leadctl.views.asof import screen_as_of, stored_as_of
from leadctl.views.export import check_output_file, copy_to_file

BY_COLUMNS = CHANNEL_DIMENSIONS
NON_SALES_POOLS = ("nurture", "dormant", "public")
FALLBACK_RULE = f"pool names without the word {'/'.join(NON_SALES_POOLS)}"
NONE_LABEL = "(none)"
TOTAL_LABEL = "(total)"
DEFAULT_GRADES = ("A", "B", "C", "D")  # without a scoring.yaml


def grade_columns(grades: Sequence[str]) -> list[str]:
    """The report column of each grade: grade_ + its name lower-cased (grade_a, grade_hot);
    a name that lower-cases to an earlier one's (`a` after `A`) gets _2, _3, ... so every
    column stays. Pure."""
    columns: list[str] = []
    for grade in grades:
        base = column = f"grade_{grade.lower()}"
        n = 2
        while column in columns:
            column, n = f"{base}_{n}", n + 1
        columns.append(column)
    return columns


def report_columns(grades: Sequence[str] = DEFAULT_GRADES) -> tuple[str, ...]:
    """The columns of the channel table (`--json` rows, `-o` files), grade mix included."""
    return ("channel", "leads", "persons", "dup_rate", "rejects", "reject_rate",
            *grade_columns(grades), "avg_score", "sales_share", "sold", "new_persons",
            "dup_other_source", "dup_same_source", "dup_from", "new_to_sales", "new_sold",
            "new_sold_amount", "sold_amount", "cost", "costed_leads", "cost_per_lead",
            "cost_per_new")


DUPLICATE_COLUMNS = ("lead_id", "created_at", "person_id", "earlier_source", "earlier_lead_id",
                     "earlier_created_at", "matched_on", "matched_values")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def channel_sql(column: str) -> str:
    """A channel value as the report groups it: trimmed of spaces, empty or NULL as
    `(none)`. Pure."""
    return f"coalesce(nullif(trim({column}), ''), {_literal(NONE_LABEL)})"


def sales_pool_sql(pool_column: str, sales_pools: list[str] | None) -> str:
    """True when the pool is a sales pool: one of `sales_pools` when the routing rules
    name them, else any pool not called nurture/dormant/public."""
    if sales_pools is not None:
        if not sales_pools:
            return "FALSE"
        return f"coalesce({pool_column} IN ({', '.join(_literal(p) for p in sales_pools)}), FALSE)"
    words = "|".join(NON_SALES_POOLS)
    return (f"({pool_column} IS NOT NULL AND NOT regexp_matches(lower({pool_column}), "
            f"'(^|_)({words})(_|$)'))")


def is_sales_pool_name(*names: str | None) -> bool:
    """A pool is not a sales pool when its name or team has the word nurture, dormant or
    public (`public_sea`, `growth_nurture`, ...)."""
    return not any(word in NON_SALES_POOLS for name in names if name
                   for word in name.lower().split("_"))


def _scope_sql(column: str, since: dt.date | None, as_of: dt.date | None) -> tuple[str, str]:
    """(visible, in_scope): SQL conditions on an arrival-time column. Visible: arrived up
    to the as-of day (or unknown); in scope: visible and on/after `since`."""
    visible = (f"({column} IS NULL OR {column} < "
               f"{date_literal(as_of + dt.timedelta(days=1))})") if as_of is not None else "TRUE"
    in_scope = f"{column} >= {date_literal(since)} AND {visible}" if since else visible
    return visible, in_scope


def _identity_after(ws, screen, counted: str | None = None) -> dt.date | None:
    """The latest day after the screen's as-of a lead arrived in a person the report
    counts, or a merge or split joined or parted its leads (None: none), as the portrait
    flags its person: `counted` gives their ids (None: every person with a lead arrived
    by then). The persons counted are today's, and such a lead or merge may have joined
    two of their earlier ones (a duplicate it counts that was not one yet)."""
    return ws.scalar(changed_after_sql(screen.as_of, counted, seen_by_then=True))


def scoped_persons_sql(since: dt.date | None, as_of: dt.date | None) -> str | None:
    """The persons of the leads `report channels` counts (arrived from `since` to the
    as-of); None without `since`: every person with a lead arrived by then."""
    if since is None:
        return None
    _, in_scope = _scope_sql(ARRIVED_AT_SQL, since, as_of)
    return ("SELECT pl.person_id FROM person_leads pl JOIN leads l ON l.lead_key = pl.lead_key "
            f"LEFT JOIN ingested_files f ON f.file_id = l.file_id WHERE {in_scope}")


def arrival_ctes(columns: tuple[str, ...] = ()) -> str:
    """CTEs (to follow a WITH) classifying every resolved lead by its arrival, with two
    window passes and no self-join:

    - lead_arrival: lead_key, lead_id, source (the channel value the report groups by,
      `channel_sql`: `vendor ` and `vendor` are one source), created_at, person_id, the
      leads `columns` asked for, and arrived_at (the lead's created_at, or its file's
      ingest time when it has none);
    - arrivals: per resolved lead its `arrival_rank` within its person (by arrived_at,
      then source, lead_id, lead_key: deterministic ties) and `arrival`:
      new_person (its person's first lead) | known_other (an earlier lead of the person
      came from another source) | repeat_same (the person's earlier leads all came from
      this source), with `earlier_key` / `earlier_source`: the earliest earlier lead
      from another source (known_other), the source's own first lead (repeat_same).
    A lead of another source than its person's first lead's has that first lead as its
    earlier lead; a lead of the first lead's source has the earliest lead of any other
    source before it, if there is one. Pure."""
    extra = "".join(f", l.{c}" for c in columns)
    return f"""
    lead_arrival AS (
        SELECT l.lead_key, l.lead_id, {channel_sql("l.source")} AS source, l.created_at,
               pl.person_id{extra},
               {ARRIVED_AT_SQL} AS arrived_at
        FROM leads l LEFT JOIN person_leads pl ON pl.lead_key = l.lead_key
        LEFT JOIN ingested_files f ON f.file_id = l.file_id),
    arrival_ranked AS (
        SELECT lead_key, source, person_id,
               row_number() OVER arrival_order AS arrival_rank,
               first_value(source) OVER arrival_order AS first_source,
               first_value(lead_key) OVER arrival_order AS first_key
        FROM lead_arrival WHERE person_id IS NOT NULL
        WINDOW arrival_order AS (PARTITION BY person_id
                                 ORDER BY arrived_at NULLS LAST, source, lead_id, lead_key)),
    arrival_other AS (
        SELECT lead_key, source, person_id, arrival_rank, first_source, first_key,
               first_value(CASE WHEN source <> first_source THEN lead_key END IGNORE NULLS)
                   OVER before AS other_key,
               first_value(CASE WHEN source <> first_source THEN source END IGNORE NULLS)
                   OVER before AS other_source
        FROM arrival_ranked
        WINDOW before AS (PARTITION BY person_id ORDER BY arrival_rank
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
    arrivals AS (
        SELECT lead_key, source, person_id, arrival_rank,
               CASE WHEN arrival_rank = 1 THEN 'new_person'
                    WHEN source <> first_source OR other_key IS NOT NULL THEN 'known_other'
                    ELSE 'repeat_same' END AS arrival,
               CASE WHEN arrival_rank = 1 THEN NULL
                    WHEN source = first_source AND other_key IS NOT NULL THEN other_key
                    ELSE first_key END AS earlier_key,
               CASE WHEN arrival_rank = 1 THEN NULL
                    WHEN source = first_source AND other_key IS NOT NULL THEN other_source
                    ELSE first_source END AS earlier_source
        FROM arrival_other)"""


def current_person_sql(table: str, columns: tuple[str, ...] = (),
                       where: str | None = None) -> str:
    """The rows of a table keyed by a person id as it was recorded (`sales`, the
    `assignments` log: written before a later merge may have retired that id) as
    `person_id` (the person the id belongs to now) plus `columns`, filtered by `where`
    (over the table's columns). An id a merge retired goes to its survivor through
    `person_aliases`, which always names the current person (each resolve re-points the
    aliases of an id it retires, identity/history.py `aliases_sql`), so one join resolves
    a chain of merges. Every report reading such a table by person reads it through
    this. Pure."""
    cols = "".join(f", t.{c}" for c in columns)
    cond = f" WHERE {where}" if where else ""
    return (f"SELECT coalesce(a.person_id, t.person_id) AS person_id{cols} "
            f"FROM (SELECT * FROM {table}{cond}) t "
            f"LEFT JOIN person_aliases a ON a.old_person_id = t.person_id")


def cost_entries_sql(entries: list[CostEntry]) -> str:
    """The cost entries of one dimension as a relation (entry, channel, first_day,
    last_day, cost). Pure."""
    if not entries:
        return ("SELECT CAST(NULL AS INTEGER) AS entry, CAST(NULL AS VARCHAR) AS channel, "
                "CAST(NULL AS DATE) AS first_day, CAST(NULL AS DATE) AS last_day, "
                "CAST(NULL AS DOUBLE) AS cost WHERE FALSE")
    values = ", ".join(
        f"({i}, {literal(e.value)}, {date_literal(e.first_day)}, {date_literal(e.last_day)}, "
        f"CAST({number(e.cost)} AS DOUBLE))" for i, e in enumerate(entries, 1))
    return f"SELECT * FROM (VALUES {values}) v(entry, channel, first_day, last_day, cost)"


def channel_report_sql(by: str = "source", since: dt.date | None = None,
                       sales_pools: list[str] | None = None,
                       as_of: dt.date | None = None,
                       costs: list[CostEntry] | None = None,
                       routing_until: dt.date | None = None, state_reason: bool = True,
                       grades: Sequence[str] = DEFAULT_GRADES,
                       every_sale: bool = False) -> str:
    """One row per channel plus a total row (channel = '(total)', last). `costs`: the
    cost entries of dimension `by` (none: the cost columns are NULL). The pools are the
    stored ones, or as of `routing_until` (`ownership_as_of_sql`, as `find` reads them;
    `state_reason`: whether the log has that column). `grades`: the grade mix, one count
    column per grade in this order (`grade_columns`). `every_sale`: every sale on record
    counts, made after `as_of` too (the default as-of, as for the pools). Pure."""
    if by not in BY_COLUMNS:
        raise UsageError(f"cannot report by {by!r}: choose one of {', '.join(BY_COLUMNS)}")
    visible, in_scope = _scope_sql("r.arrived_at", since, as_of)

    def sold_by(column: str) -> str:  # a sale made after the as-of day is not one yet
        return "TRUE" if as_of is None or every_sale else (
            f"({column} IS NULL OR {column} <= {date_literal(as_of)})")
    ownership = "ownership" if routing_until is None else \
        f"({ownership_as_of_sql(routing_until, state_reason=state_reason)})"
    reject_since = f"AND rejected_at >= {date_literal(since)}" if since else ""
    window = [f"e.first_day <= {date_literal(as_of)}"] if as_of is not None else []
    window += [f"e.last_day >= {date_literal(since)}"] if since else []
    overlaps = " AND ".join(window) or "TRUE"
    mix = list(zip(grades, map(ident, grade_columns(grades)), strict=True))
    grade_counts = "".join(
        f"\n        count(DISTINCT CASE WHEN grade = {literal(grade)} THEN person_id END) AS {col},"
        for grade, col in mix)
    channel_grades = "".join(f"coalesce(c.{col}, 0) AS {col}, " for _, col in mix)
    total_grades = "".join(f"t.{col}, " for _, col in mix)
    grade_select = "".join(f"{col}, " for _, col in mix)
    aggregates = f"""
        count(*) AS leads,
        count(DISTINCT person_id) AS persons,
        round(avg(CASE WHEN cross_channel THEN 1.0 ELSE 0.0 END), 4) AS dup_rate,{grade_counts}
        round(CAST(count(DISTINCT CASE WHEN in_sales THEN person_id END) AS DOUBLE)
              / nullif(count(DISTINCT person_id), 0), 4) AS sales_share,
        count(DISTINCT CASE WHEN sold THEN person_id END) AS sold,
        count(CASE WHEN arrival = 'new_person' THEN 1 END) AS new_persons,
        count(CASE WHEN arrival = 'known_other' THEN 1 END) AS dup_other_source,
        count(CASE WHEN arrival = 'repeat_same' THEN 1 END) AS dup_same_source,
        count(CASE WHEN arrival = 'new_person' AND in_sales THEN 1 END) AS new_to_sales,
        count(CASE WHEN arrival = 'new_person' AND sold THEN 1 END) AS new_sold,
        coalesce(sum(CASE WHEN arrival = 'new_person' THEN amount END), 0) AS new_amount"""
    rejects = (f"""
    reject_counts AS (
        SELECT {channel_sql("source")} AS channel, count(*) AS rejects
        FROM rejects WHERE kind = 'leads' AND reason <> 'superseded' {reject_since}
        GROUP BY 1),""" if by == "source" else """
    reject_counts AS (
        SELECT CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS BIGINT) AS rejects WHERE FALSE),""")
    rejects_value = "coalesce(rejects, 0)" if by == "source" else "rejects"
    return f"""
WITH {arrival_ctes(() if by == "source" else (by,))},
    lead_rows AS (
        SELECT {channel_sql(f"a.{by}")} AS channel,
               a.created_at, a.arrived_at, a.person_id, ar.arrival, ar.earlier_source
        FROM lead_arrival a LEFT JOIN arrivals ar ON ar.lead_key = a.lead_key),
    person_channels AS (
        SELECT person_id, count(DISTINCT channel) AS channels
        FROM lead_rows r WHERE person_id IS NOT NULL AND {visible} GROUP BY person_id),
    current_sales AS ({current_person_sql("sales", ("amount",), sold_by("sold_at"))}),
    -- sold by the as-of: a sale on record made by then, a logged sale dated by then, and
    -- for a person with no sale on record at all (a Spark run loaded into a new
    -- workspace: the workspace keeps its own sales) a lock, dated by its closing
    sold_persons AS (
        SELECT person_id FROM current_sales
        UNION SELECT person_id FROM ({current_person_sql(
            "assignments", where=f"rule = 'sale' AND {sold_by('as_of')}")})
        UNION SELECT person_id FROM ownership o
        WHERE locked_until IS NOT NULL AND {sold_by("status_since")}
          AND NOT EXISTS (SELECT 1 FROM ({current_person_sql("sales")}) x
                          WHERE x.person_id = o.person_id)),
    sale_amounts AS (
        SELECT person_id, sum(amount) AS amount FROM current_sales GROUP BY person_id),
    person_state AS (
        SELECT pc.person_id, pc.channels, s.grade, s.score,
               {sales_pool_sql("o.pool", sales_pools)} AS in_sales,
               sp.person_id IS NOT NULL AS sold, sa.amount
        FROM person_channels pc
        LEFT JOIN scores s ON s.person_id = pc.person_id
        LEFT JOIN {ownership} o ON o.person_id = pc.person_id
        LEFT JOIN sold_persons sp ON sp.person_id = pc.person_id
        LEFT JOIN sale_amounts sa ON sa.person_id = pc.person_id),
    scoped AS (
        SELECT r.channel, r.person_id, coalesce(ps.channels, 1) > 1 AS cross_channel,
               ps.grade, ps.score, coalesce(ps.in_sales, FALSE) AS in_sales,
               coalesce(ps.sold, FALSE) AS sold, ps.amount, r.arrival, r.earlier_source
        FROM lead_rows r LEFT JOIN person_state ps ON ps.person_id = r.person_id
        WHERE {in_scope}),
    scoped_persons AS (SELECT DISTINCT channel, person_id, score, amount FROM scoped
                       WHERE person_id IS NOT NULL),
    per_channel AS (
        SELECT channel, {aggregates}
        FROM scoped GROUP BY channel),
    channel_persons AS (
        SELECT channel, {round_sql(avg_sql("score"), 2)} AS avg_score,
               coalesce(sum(amount), 0) AS sold_amount
        FROM scoped_persons GROUP BY channel),
    dup_sources AS (
        SELECT channel, earlier_source, count(*) AS n FROM scoped
        WHERE arrival = 'known_other' GROUP BY channel, earlier_source),
    channel_dup_from AS (
        SELECT channel, {_json_map_sql()} AS dup_from FROM dup_sources GROUP BY channel),
    total_dup_from AS (
        SELECT {_json_map_sql()} AS dup_from
        FROM (SELECT earlier_source, sum(n) AS n FROM dup_sources GROUP BY earlier_source) d),
    cost_entries AS ({cost_entries_sql(costs or [])}),
    entry_leads AS (
        SELECT e.entry, e.channel, e.cost, e.first_day, e.last_day,
               count(r.channel) AS period_leads,
               count(CASE WHEN r.channel IS NOT NULL AND {in_scope} THEN 1 END)
                   AS costed_leads,
               count(CASE WHEN r.arrival = 'new_person' AND {in_scope} THEN 1 END)
                   AS costed_new
        FROM cost_entries e
        LEFT JOIN lead_rows r ON r.channel = e.channel AND {visible}
             AND CAST(r.arrived_at AS DATE) BETWEEN e.first_day AND e.last_day
        GROUP BY e.entry, e.channel, e.cost, e.first_day, e.last_day),
    channel_costs AS (
        SELECT e.channel,
               sum(CASE WHEN e.period_leads > 0 THEN e.cost * e.costed_leads / e.period_leads
                        WHEN {overlaps} THEN e.cost ELSE 0 END) AS cost,
               sum(e.costed_leads) AS costed_leads, sum(e.costed_new) AS costed_new
        FROM entry_leads e GROUP BY e.channel),
    total AS (
        SELECT {_literal(TOTAL_LABEL)} AS channel, {aggregates}
        FROM scoped),
    total_persons AS (
        SELECT {round_sql(avg_sql("score"), 2)} AS avg_score,
               coalesce(sum(amount), 0) AS sold_amount
        FROM (SELECT DISTINCT person_id, score, amount FROM scoped_persons) d),{rejects}
    channel_names AS (
        SELECT channel FROM per_channel UNION SELECT channel FROM reject_counts
        UNION SELECT channel FROM channel_costs WHERE cost > 0),
    channels AS (
        SELECT n.channel, coalesce(c.leads, 0) AS leads,
               coalesce(c.persons, 0) AS persons, c.dup_rate, rc.rejects,
               {channel_grades}cp.avg_score, c.sales_share, coalesce(c.sold, 0) AS sold,
               coalesce(c.new_persons, 0) AS new_persons,
               coalesce(c.dup_other_source, 0) AS dup_other_source,
               coalesce(c.dup_same_source, 0) AS dup_same_source,
               -- none from another source: '{{}}' JSON text, in a file as in --json
               coalesce(df.dup_from, '{{}}') AS dup_from,
               coalesce(c.new_to_sales, 0) AS new_to_sales,
               coalesce(c.new_sold, 0) AS new_sold,
               coalesce(c.new_amount, 0) AS new_amount,
               coalesce(cp.sold_amount, 0) AS sold_amount,
               cc.cost, cc.costed_leads, cc.costed_new, 0 AS is_total
        FROM channel_names n
        LEFT JOIN per_channel c ON c.channel = n.channel
        LEFT JOIN reject_counts rc ON rc.channel = n.channel
        LEFT JOIN channel_persons cp ON cp.channel = n.channel
        LEFT JOIN channel_dup_from df ON df.channel = n.channel
        LEFT JOIN channel_costs cc ON cc.channel = n.channel
        UNION ALL
        SELECT t.channel, t.leads, t.persons, t.dup_rate,
               (SELECT sum(rejects) FROM reject_counts), {total_grades}tp.avg_score,
               t.sales_share, t.sold, t.new_persons,
               t.dup_other_source, t.dup_same_source,
               coalesce((SELECT dup_from FROM total_dup_from), '{{}}'),
               t.new_to_sales, t.new_sold, t.new_amount, tp.sold_amount,
               (SELECT sum(cost) FROM channel_costs),
               (SELECT sum(costed_leads) FROM channel_costs),
               (SELECT sum(costed_new) FROM channel_costs), 1
        FROM total t CROSS JOIN total_persons tp)
SELECT channel, leads, persons, dup_rate, CAST({rejects_value} AS BIGINT) AS rejects,
       round(CAST({rejects_value} AS DOUBLE)
             / nullif(leads + coalesce(rejects, 0), 0), 4) AS reject_rate,
       {grade_select}avg_score, sales_share, sold,
       new_persons, dup_other_source, dup_same_source, dup_from, new_to_sales, new_sold,
       {round_sql("new_amount", 2)} AS new_sold_amount,
       {round_sql("sold_amount", 2)} AS sold_amount,
       {round_sql("cost", 2)} AS cost,
       CAST(costed_leads AS BIGINT) AS costed_leads,
       {round_sql("cost / nullif(costed_leads, 0)", 2)} AS cost_per_lead,
       {round_sql("cost / nullif(costed_new, 0)", 2)} AS cost_per_new
FROM channels
ORDER BY is_total, leads DESC, channel"""


def _json_map_sql() -> str:
    """{earlier_source: count} as JSON text, most first (then by name)."""
    order = "ORDER BY n DESC, earlier_source"
    return (f"CAST(to_json(map(list(earlier_source {order}), list(CAST(n AS BIGINT) {order})))"
            " AS VARCHAR)")


def sales_pools_from_rules(rules_dir: Path | None) -> tuple[list[str] | None, str]:
    """Sales pools as routing.yaml defines them, and how that was decided."""
    rules = load_routing_rules(rules_dir)  # invalid: a RuleError at its place (exit 2)
    if not rules.present or not rules.pools:
        return None, f"{FALLBACK_RULE} (no pools in routing.yaml)"
    flagged = [p for p in rules.pools if getattr(p, "sales", None) is not None]
    if flagged:
        return [p.name for p in flagged if p.sales], "pools with sales: true in routing.yaml"
    dormant = getattr(rules.lifecycle, "dormant_pool", None)
    names = [p.name for p in rules.pools if p.name != dormant and is_sales_pool_name(p.name,
                                                                                      p.team)]
    return names, (f"routing.yaml pools whose name/team has no word "
                   f"{'/'.join(NON_SALES_POOLS)}, nor the dormant pool")


def stored_grades_sql() -> str:
    """The grades the stored scores hold, best first (by their highest score: grades are
    thresholds, highest first), then by name. Pure."""
    return ("SELECT grade FROM scores WHERE grade IS NOT NULL GROUP BY grade "
            "ORDER BY max(score) DESC NULLS LAST, grade")


def report_grades(ws, rules_dir: Path | None) -> tuple[list[str], list[str]]:
    """The grade mix's grades, best first, and warnings: scoring.yaml's grades in its
    order (A-D without the file), then any grade of the stored scores it does not define
    (scored with other rules: those persons would be missing from the mix). A scoring.yaml
    with errors is a RuleError at its place (exit 2), as a broken routing.yaml or
    costs.yaml is for this report."""
    stored = [r["grade"] for r in ws.rows(stored_grades_sql())]
    rules = load_scoring_rules(rules_dir)
    grades = [g.name for g in rules.grades] if rules.present else list(DEFAULT_GRADES)
    extra = [g for g in stored if g not in grades]
    if not extra:
        return grades, []
    defined = str(rules.path) if rules.present else "the default A-D (no scoring.yaml)"
    return grades + extra, [
        f"the stored scores have grade{'s' if len(extra) > 1 else ''} {', '.join(extra)}, "
        f"which {defined} does not define (scored with other rules?): the grade mix "
        f"shows {'them' if len(extra) > 1 else 'it'} after its own; run `leadctl score` "
        "to grade again"]


def duplicates_sql(source: str, since: dt.date | None = None, as_of: dt.date | None = None,
                   reveal: bool = False) -> str:
    """The leads of `source` (a channel value: `channel_sql`, so `vendor ` and `vendor`
    are one source, as in the channel table) in scope that duplicate an earlier lead of
    another source:
    one row each with that earlier lead, and the identifier values the two share directly
    (`matched_on`: their types; `matched_values`: masked unless `reveal`; both NULL when
    the leads joined only through other leads). Ordered by arrival. Pure."""
    _, in_scope = _scope_sql("a.arrived_at", since, as_of)
    value = "i.value" if reveal else (
        "CASE i.id_type " + " ".join(f"WHEN {literal(kind)} THEN {pii.mask_sql(kind, 'i.value')}"
                                     for kind in ("phone", "email", "id_card", "wechat",
                                                  "device_id")) + " ELSE i.value END")
    return f"""
WITH {arrival_ctes()},
    dups AS (
        SELECT a.lead_key, a.lead_id, a.arrived_at, a.person_id, ar.earlier_key,
               ar.earlier_source
        FROM lead_arrival a JOIN arrivals ar ON ar.lead_key = a.lead_key
        WHERE a.source = {channel_sql(literal(source))} AND ar.arrival = 'known_other'
          AND {in_scope}),
    shared AS (
        SELECT DISTINCT d.lead_key, i.id_type, {value} AS shown
        FROM dups d
        JOIN lead_identifiers i ON i.lead_key = d.lead_key AND i.status = 'ok'
        JOIN lead_identifiers j ON j.lead_key = d.earlier_key AND j.status = 'ok'
             AND j.id_type = i.id_type AND j.value = i.value),
    matched AS (
        SELECT lead_key, string_agg(DISTINCT id_type, ', ' ORDER BY id_type) AS matched_on,
               string_agg(id_type || ' ' || shown, '; ' ORDER BY id_type, shown)
                   AS matched_values
        FROM shared GROUP BY lead_key)
SELECT d.lead_id, d.arrived_at AS created_at, d.person_id, d.earlier_source,
       e.lead_id AS earlier_lead_id, e.arrived_at AS earlier_created_at, m.matched_on,
       m.matched_values
FROM dups d JOIN lead_arrival e ON e.lead_key = d.earlier_key
LEFT JOIN matched m ON m.lead_key = d.lead_key
ORDER BY d.arrived_at, d.lead_id, d.lead_key"""


def channel_report(ws, *, by: str = "source", since: dt.date | None = None,
                   rules_dir: Path | None = None, out: Path | None = None,
                   as_of: dt.date | None = None, duplicates: str | None = None,
                   reveal: bool = False) -> dict:
    """The channel table (or, with `duplicates`, one source's duplicate leads) as of one
    date; to `out` (CSV/Parquet via COPY) when given."""
    if out is not None:
        check_output_file(out, ws.path)
    screen = screen_as_of(ws, as_of)
    if duplicates is not None:
        return _duplicates(ws, duplicates, by, since, out, screen, reveal)
    costs = load_cost_rules(rules_dir)  # a broken costs.yaml: RuleError with file:line:col
    sales_pools, sales_rule = sales_pools_from_rules(rules_dir)
    grades, grade_warnings = report_grades(ws, rules_dir)
    until = screen.routing_until  # the pools as find and portrait read them
    sql = channel_report_sql(by, since, sales_pools, screen.as_of, costs.for_dimension(by),
                             routing_until=until,
                             state_reason=until is None or has_state_reason(ws),
                             grades=grades, every_sale=until is None)
    result: dict = {"by": by, "since": since.isoformat() if since else None,
                    **screen.with_routing(ws.scalar(latest_action_sql(until)),
                                          score=stored_as_of(ws, "scores"),
                                          identity=_identity_after(
                                              ws, screen, scoped_persons_sql(since, screen.as_of))),
                    "sales_pools": sales_pools, "sales_pools_rule": sales_rule,
                    "grades": grades, "costs": str(costs.path) if costs.present else None,
                    "currency": costs.currency, "warnings": grade_warnings}
    if out is not None:
        if not reveal:  # a utm value or source may quote a phone: masked as on screen
            sql = _masked_channels_sql(ws, sql)
        try:
            return {**result, "file": str(out), "rows": copy_to_file(ws, sql, out)}
        finally:
            if not reveal:
                ws.unregister(MASKED_CHANNELS)
    rows = ws.rows(sql)  # one row per channel: small; the total row is last
    for row in rows:  # dup_from is always JSON text ('{}' for none): the SQL says so
        row["dup_from"] = {pii.text_shown(source, reveal): n for source, n in
                           json.loads(row["dup_from"]).items()}
    return {**result, "channels": rows[:-1], "total": rows[-1]}


MASKED_CHANNELS = "_masked_channels"


def _masked_channels_sql(ws, sql: str) -> str:
    """The channel rows (one per channel: small) with the phones, e-mails and ID cards
    quoted in their channel value and dup_from sources masked, as a registered table."""
    import pyarrow as pa

    result = ws.execute(sql)  # (a relation would meet the connection's pending result)
    with warnings.catch_warnings():  # DuckDB's note on the extra copy: a few rows here
        warnings.simplefilter("ignore", UserWarning)
        table = (getattr(result, "to_arrow_table", None) or result.fetch_arrow_table)()
    for column in ("channel", "dup_from"):
        at = table.schema.get_field_index(column)
        table = table.set_column(at, column, pa.array(
            [pii.mask_text(v) for v in table.column(column).to_pylist()], pa.string()))
    ws.register(MASKED_CHANNELS, table)
    return f"SELECT * FROM {MASKED_CHANNELS}"


def _duplicates(ws, source: str, by: str, since: dt.date | None, out: Path | None,
                screen, reveal: bool) -> dict:
    if by != "source":
        raise UsageError(f"--duplicates takes a source; it cannot be combined with --by {by}")
    if out is None:
        raise UsageError("--duplicates needs -o FILE (.csv or .parquet): the refund evidence "
                         "is a file")
    # the sources `report channels` lists: those of leads, and of rows all rejected,
    # trimmed as it lists them (`vendor ` is the source `vendor`)
    source = ws.scalar(f"SELECT {channel_sql(literal(source))}")
    sources = [r["source"] for r in ws.rows(
        f"SELECT {channel_sql('source')} AS source FROM leads UNION "
        f"SELECT {channel_sql('source')} FROM rejects WHERE kind = 'leads' ORDER BY 1")]
    if source not in sources:  # the near miss found on the names, shown as the table shows them
        raise UsageError(pii.text_shown(f"unknown source '{source}'{one_of(source, sources)}",
                                        reveal))
    # kept for the as-of check of the persons it lists (the query once: 1 s at 1M leads)
    ws.execute(f"CREATE OR REPLACE TEMP TABLE {LISTED} AS "
               f"{duplicates_sql(source, since, screen.as_of, reveal)}")
    try:
        rows = copy_to_file(ws, f"SELECT * FROM {LISTED}", out)  # in its order, as inserted
        identity = _identity_after(ws, screen, f"SELECT person_id FROM {LISTED}")
    finally:
        ws.execute(f"DROP TABLE IF EXISTS {LISTED}")
    return {"source": pii.text_shown(source, reveal),  # a phone in its name: masked, as listed
            "since": since.isoformat() if since else None,
            **screen.to_dict(identity=identity), "file": str(out), "rows": rows}


LISTED = "_listed_duplicates"
