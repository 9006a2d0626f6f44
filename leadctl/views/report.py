"""`leadctl report channels`: per channel (source or a UTM field) the lead volume, how
many distinct persons it brought, how much it duplicates other channels, its reject
rate, the grade mix, how much of it reached sales pools and how much sold.

Everything is as of one date (`leadctl.views.asof`: the last tag run's by default,
`--as-of` moves it): leads created after the as-of day are not counted; grades, scores
and pools are the stored ones (`as_of_differs` says when their as-of is another).

Definitions (per value of the `--by` column; an empty value counts as `(none)`):
- leads: leads of the channel created up to the as-of day (and on/after `--since` when
  given; a lead without a creation time always counts);
- persons: distinct resolved persons of those leads;
- dup_rate: share of the channel's leads whose person also has leads from another
  channel (any date: a lead from a person another channel already brought is a
  duplicate however old the other lead is);
- rejects / reject_rate: rejected lead rows of that source (rejected on/after `--since`),
  rejects / (leads + rejects); only with `--by source` (rejects carry no UTM fields);
- grade_a..grade_d, avg_score: the channel's persons by their current grade / score;
- sales_share: share of the channel's persons in a sales pool;
- sold: the channel's persons with a recorded sale (sales table, a sale in the
  assignment log, or a lock from a sale in ownership).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from leadctl.errors import UsageError
from leadctl.routing.parse import load_routing_rules
from leadctl.sqlfn import round_sql
from leadctl.views.asof import screen_as_of, stored_as_of
from leadctl.views.export import copy_sql

BY_COLUMNS = ("source", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
              "channel")
NON_SALES_POOLS = ("nurture", "dormant", "public")
FALLBACK_RULE = f"pool names without the word {'/'.join(NON_SALES_POOLS)}"
NONE_LABEL = "(none)"
TOTAL_LABEL = "(total)"
REPORT_COLUMNS = ("channel", "leads", "persons", "dup_rate", "rejects", "reject_rate",
                  "grade_a", "grade_b", "grade_c", "grade_d", "avg_score", "sales_share",
                  "sold")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


def channel_report_sql(by: str = "source", since: dt.date | None = None,
                       sales_pools: list[str] | None = None,
                       as_of: dt.date | None = None) -> str:
    """One row per channel plus a total row (channel = '(total)', last). Pure."""
    if by not in BY_COLUMNS:
        raise UsageError(f"cannot report by {by!r}: choose one of {', '.join(BY_COLUMNS)}")
    day = f"DATE '{since.isoformat()}'" if since else None
    scope = [f"r.created_at >= {day}"] if day else []
    if as_of is not None:
        scope.append(f"(r.created_at IS NULL OR r.created_at < "
                     f"DATE '{(as_of + dt.timedelta(days=1)).isoformat()}')")
    lead_since = f"WHERE {' AND '.join(scope)}" if scope else ""
    reject_since = f"AND rejected_at >= {day}" if day else ""
    aggregates = """
        count(*) AS leads,
        count(DISTINCT person_id) AS persons,
        round(avg(CASE WHEN cross_channel THEN 1.0 ELSE 0.0 END), 4) AS dup_rate,
        count(DISTINCT CASE WHEN grade = 'A' THEN person_id END) AS grade_a,
        count(DISTINCT CASE WHEN grade = 'B' THEN person_id END) AS grade_b,
        count(DISTINCT CASE WHEN grade = 'C' THEN person_id END) AS grade_c,
        count(DISTINCT CASE WHEN grade = 'D' THEN person_id END) AS grade_d,
        round(CAST(count(DISTINCT CASE WHEN in_sales THEN person_id END) AS DOUBLE)
              / nullif(count(DISTINCT person_id), 0), 4) AS sales_share,
        count(DISTINCT CASE WHEN sold THEN person_id END) AS sold"""
    rejects = (f"""
    reject_counts AS (
        SELECT coalesce(nullif(trim(source), ''), {_literal(NONE_LABEL)}) AS channel,
               count(*) AS rejects
        FROM rejects WHERE kind = 'leads' {reject_since}
        GROUP BY 1),""" if by == "source" else """
    reject_counts AS (
        SELECT CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS BIGINT) AS rejects WHERE FALSE),""")
    return f"""
WITH lead_rows AS (
        SELECT coalesce(nullif(trim(l.{by}), ''), {_literal(NONE_LABEL)}) AS channel,
               l.created_at, pl.person_id
        FROM leads l LEFT JOIN person_leads pl ON pl.lead_key = l.lead_key),
    person_channels AS (
        SELECT person_id, count(DISTINCT channel) AS channels
        FROM lead_rows WHERE person_id IS NOT NULL GROUP BY person_id),
    sold_persons AS (
        SELECT person_id FROM sales
        UNION SELECT person_id FROM assignments WHERE rule = 'sale'
        UNION SELECT person_id FROM ownership WHERE locked_until IS NOT NULL),
    person_state AS (
        SELECT pc.person_id, pc.channels, s.grade, s.score,
               {sales_pool_sql("o.pool", sales_pools)} AS in_sales,
               sp.person_id IS NOT NULL AS sold
        FROM person_channels pc
        LEFT JOIN scores s ON s.person_id = pc.person_id
        LEFT JOIN ownership o ON o.person_id = pc.person_id
        LEFT JOIN sold_persons sp ON sp.person_id = pc.person_id),
    scoped AS (
        SELECT r.channel, r.person_id, coalesce(ps.channels, 1) > 1 AS cross_channel,
               ps.grade, ps.score, coalesce(ps.in_sales, FALSE) AS in_sales,
               coalesce(ps.sold, FALSE) AS sold
        FROM lead_rows r LEFT JOIN person_state ps ON ps.person_id = r.person_id
        {lead_since}),
    scoped_persons AS (SELECT DISTINCT channel, person_id, score FROM scoped
                       WHERE person_id IS NOT NULL),
    per_channel AS (
        SELECT channel, {aggregates}
        FROM scoped GROUP BY channel),
    channel_scores AS (
        SELECT channel, {round_sql("avg(score)", 2)} AS avg_score
        FROM scoped_persons GROUP BY channel),
    total AS (
        SELECT {_literal(TOTAL_LABEL)} AS channel, {aggregates}
        FROM scoped),
    total_score AS (
        SELECT {round_sql("avg(score)", 2)} AS avg_score
        FROM (SELECT DISTINCT person_id, score FROM scoped_persons) d),{rejects}
    channels AS (
        SELECT coalesce(c.channel, rc.channel) AS channel, coalesce(c.leads, 0) AS leads,
               coalesce(c.persons, 0) AS persons, c.dup_rate, rc.rejects,
               coalesce(c.grade_a, 0) AS grade_a, coalesce(c.grade_b, 0) AS grade_b,
               coalesce(c.grade_c, 0) AS grade_c, coalesce(c.grade_d, 0) AS grade_d,
               cs.avg_score, c.sales_share, coalesce(c.sold, 0) AS sold, 0 AS is_total
        FROM per_channel c
        FULL OUTER JOIN reject_counts rc ON rc.channel = c.channel
        LEFT JOIN channel_scores cs ON cs.channel = c.channel
        UNION ALL
        SELECT t.channel, t.leads, t.persons, t.dup_rate,
               (SELECT sum(rejects) FROM reject_counts), t.grade_a, t.grade_b, t.grade_c,
               t.grade_d, ts.avg_score, t.sales_share, t.sold, 1
        FROM total t CROSS JOIN total_score ts)
SELECT channel, leads, persons, dup_rate,
       {"coalesce(rejects, 0)" if by == "source" else "rejects"} AS rejects,
       round(CAST({"coalesce(rejects, 0)" if by == "source" else "rejects"} AS DOUBLE)
             / nullif(leads + coalesce(rejects, 0), 0), 4) AS reject_rate,
       grade_a, grade_b, grade_c, grade_d, avg_score, sales_share, sold
FROM channels
ORDER BY is_total, leads DESC, channel"""


def sales_pools_from_rules(rules_dir: Path | None) -> tuple[list[str] | None, str]:
    """Sales pools as routing.yaml defines them, and how that was decided."""
    try:

        rules = load_routing_rules(rules_dir)
    except Exception as exc:  # a broken routing.yaml must not stop a report
        return None, f"{FALLBACK_RULE} (routing.yaml unusable: {exc})"
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


def channel_report(ws, *, by: str = "source", since: dt.date | None = None,
                   rules_dir: Path | None = None, out: Path | None = None,
                   as_of: dt.date | None = None) -> dict:
    sales_pools, sales_rule = sales_pools_from_rules(rules_dir)
    screen = screen_as_of(ws, as_of)
    sql = channel_report_sql(by, since, sales_pools, screen.as_of)
    result: dict = {"by": by, "since": since.isoformat() if since else None,
                    **screen.to_dict(score=stored_as_of(ws, "scores")),
                    "sales_pools": sales_pools, "sales_pools_rule": sales_rule}
    if out is not None:

        if out.parent and not out.parent.exists():
            raise UsageError(f"directory {out.parent} does not exist")
        rows = ws.execute(copy_sql(sql, out)).fetchone()[0]
        return {**result, "file": str(out), "rows": int(rows)}
    rows = ws.rows(sql)  # one row per channel: small; the total row is last
    return {**result, "channels": rows[:-1], "total": rows[-1]}
