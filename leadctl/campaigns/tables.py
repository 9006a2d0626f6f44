"""Tables owned by campaigns: experiments recorded by `leadctl audience export` and
evaluated by `leadctl report ab`. Both are kept (not rebuilt by any stage)."""

CAMPAIGN_DDL: list[str] = [
    # One row per experiment, name unique (enforced by `audience export`). kind: audience.
    # starts_on: the as-of of the export (conversions count from that day on); variants:
    # JSON list of {variant, weight, share, buckets: [lo, hi)} (the holdout first when
    # there is one); holdout: its share; goal: the default goal event type of report ab.
    """CREATE TABLE IF NOT EXISTS experiments (
        name VARCHAR, kind VARCHAR, created_at TIMESTAMP, created_by VARCHAR,
        run_id INTEGER, expression VARCHAR, starts_on DATE, seed VARCHAR, variants JSON,
        control VARCHAR, holdout DOUBLE, goal VARCHAR, persons BIGINT)""",
    # The membership as exported, (name, person_id) unique: evaluation uses it even when
    # persons later merge or split. anchor_source/anchor_lead_id: the member's earliest
    # lead at the export (identity.lookup.earliest_leads_sql, as overrides name a person):
    # a lead, unlike a person id, never changes, so a member is the person now holding
    # it (a split can give the member's old id to another human). NULL in rows recorded
    # before the columns existed (schema.UPGRADES): those map through person_aliases.
    """CREATE TABLE IF NOT EXISTS experiment_members (
        name VARCHAR, person_id VARCHAR, bucket INTEGER, variant VARCHAR,
        anchor_source VARCHAR, anchor_lead_id VARCHAR)""",
]
