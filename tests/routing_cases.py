"""Shared routing test cases: tiny person_features + scores, rules written from YAML
text, and look-ups of the resulting ownership and log."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from leadctl.routing.parse import load_routing_rules
from leadctl.workspace import open_memory

AS_OF = dt.date(2026, 11, 4)  # a Wednesday: the capacity week runs 11-02 .. 11-08


def make_ws(persons: list[tuple[str, float | None, str | None, str]]):
    """person_features (person_id, region) + scores (score, grade) for tiny cases."""
    ws = open_memory()
    ws.execute("CREATE OR REPLACE TABLE person_features (person_id VARCHAR, region VARCHAR, "
               "last_seen TIMESTAMP)")
    add_persons(ws, persons)
    return ws


def add_persons(ws, persons) -> None:
    def lit(v):
        return "NULL" if v is None else (f"'{v}'" if isinstance(v, str) else repr(v))

    ws.execute("INSERT INTO person_features (person_id, region) VALUES "
               + ", ".join(f"({lit(p)}, {lit(r)})" for p, _, _, r in persons))
    ws.execute("INSERT INTO persons (person_id) VALUES "
               + ", ".join(f"({lit(p)})" for p, *_ in persons))
    scored = [(p, s, g) for p, s, g, _ in persons if s is not None]
    if scored:
        ws.execute("INSERT INTO scores (person_id, score, grade) VALUES "
                   + ", ".join(f"({lit(p)}, {lit(float(s))}, {lit(g)})" for p, s, g in scored))


def rules(tmp_path: Path, text: str):
    (tmp_path / "routing.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_routing_rules(tmp_path)


def owners(ws) -> dict[str, str | None]:
    return {r["person_id"]: r["owner"] for r in
            ws.rows("SELECT person_id, owner FROM ownership ORDER BY person_id")}


def state(ws, person: str) -> dict:
    return ws.rows("SELECT * FROM ownership WHERE person_id = ?", [person])[0]


def log_count(ws) -> int:
    return ws.scalar("SELECT count(*) FROM assignments")


def ranked(n: int, grade: str = "A", region: str = "east", prefix: str = "p"):
    """n persons with distinct scores: p01 best ... pNN worst."""
    return [(f"{prefix}{i:02d}", 100.0 - i, grade, region) for i in range(1, n + 1)]


ONE_POOL = """\
pools:
  - name: sales
    allocation: {allocation}
    reps:
{reps}
routes:
  - name: all
    pool: sales
"""


def one_pool(tmp_path, allocation: str, reps: str):
    return rules(tmp_path, ONE_POOL.format(allocation=allocation,
                                           reps=textwrap.indent(textwrap.dedent(reps), "      ")))


ROUTED = """\
pools:
  - name: sales
    allocation: round_robin
    reps: [ann, bob]
  - name: public_sea
    allocation: claim
  - name: nurture
    allocation: claim
routes:
  - name: hot
    when: grade = 'A'
    pool: sales{reassign}
  - name: warm
    when: grade = 'B' and region = 'east'
    pool: public_sea
{default}
"""

