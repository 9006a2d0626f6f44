"""Precision of `leadctl identity suggest`, and the recall accepting its suggestions adds,
on data with known truth.

    python bench/suggest_quality.py [--data sample|generate|datagen] [--seed S]
                                    [--persons N | --leads N] [--typos F] [--min-score S]

- `sample`: sample_data/inbox with sample_data/truth.csv;
- `generate`: sample_data/generate.py with another seed (its truth.csv);
- `datagen`: bench/datagen.py (no events; truth.parquet): many repeated names, the test
  of precision at scale.
`--typos F` perturbs, after ingest and before resolve, a fraction F of the leads that
are not their true person's first lead (chosen by a hash of the lead id), the way people
mistype: the phone gets one digit changed, two adjacent digits swapped or a digit
dropped; the e-mail domain a typo (qq.con, 163.co, gmial.com, .con); the device id loses
its dashes; the ID card gets one digit changed (failing its check digit); the WeChat id is
dropped. Such a lead usually falls out of its person: the suggestions should bring it back.

Prints, for each score threshold: suggestions, correct ones (both persons the same true
person), precision; and pairwise recall and precision of the persons before and after
accepting every suggestion at or above the threshold (--min-score, default the
command's default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def leadctl(db: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "leadctl", "--db", str(db), "--rules",
                    str(REPO / "rules"), *args], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perturb_sql(fraction: float) -> list[str]:
    """UPDATEs of `leads` (joined to the loaded `truth`): typos on a fraction of the leads
    that are not their true person's first."""
    bucket = int(fraction * 10000)
    digits = "regexp_replace(phone, '[^0-9]', '', 'g')"
    d = f"right({digits}, 11)"
    pos = "CAST(4 + hash(lead_id, 'pos') % 7 AS INTEGER)"  # 4..10
    return [
        f"""CREATE OR REPLACE TEMP TABLE victims AS
            SELECT l.lead_key FROM leads l JOIN truth t USING (source, lead_id)
            QUALIFY row_number() OVER (PARTITION BY t.person ORDER BY l.created_at, l.lead_key) > 1
              AND hash(l.lead_id, 'typo') % 10000 < {bucket}""",
        f"""UPDATE leads SET phone = CASE hash(lead_id, 'kind') % 3
                WHEN 0 THEN left({d}, {pos} - 1)
                    || CAST((CAST(substr({d}, {pos}, 1) AS INTEGER) + 1) % 10 AS VARCHAR)
                    || substr({d}, {pos} + 1)
                WHEN 1 THEN left({d}, {pos} - 1) || substr({d}, {pos} + 1, 1)
                    || substr({d}, {pos}, 1) || substr({d}, {pos} + 2)
                ELSE left({d}, {pos} - 1) || substr({d}, {pos} + 1) END
            WHERE lead_key IN (SELECT lead_key FROM victims) AND length({digits}) >= 11""",
        """UPDATE leads SET email = CASE
                WHEN lower(email) LIKE '%@qq.com'
                    THEN regexp_replace(email, '(?i)qq\\.com$', 'qq.con')
                WHEN lower(email) LIKE '%@163.com'
                    THEN regexp_replace(email, '(?i)163\\.com$', '163.co')
                WHEN lower(email) LIKE '%@gmail.com'
                    THEN regexp_replace(email, '(?i)gmail', 'gmial')
                ELSE regexp_replace(email, '(?i)\\.com$', '.con') END
            WHERE lead_key IN (SELECT lead_key FROM victims) AND email IS NOT NULL""",
        """UPDATE leads SET device_id = replace(device_id, '-', ''), wechat = NULL
            WHERE lead_key IN (SELECT lead_key FROM victims)""",
        """UPDATE leads SET id_card = left(trim(id_card), 14)
                || CAST((CAST(substr(trim(id_card), 15, 1) AS INTEGER) + 1) % 10 AS VARCHAR)
                || substr(trim(id_card), 16)
            WHERE lead_key IN (SELECT lead_key FROM victims) AND length(trim(id_card)) = 18""",
    ]


def pairwise_sql(cluster: str) -> str:
    """(true pairs, found pairs, correct pairs) of clusters `cluster(lead_key, cluster)`."""
    return f"""
        WITH j AS (SELECT c.cluster, t.person FROM {cluster} c JOIN leads l USING (lead_key)
                   JOIN truth t USING (source, lead_id)),
        tp AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) n FROM j GROUP BY person)),
        fp AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) n FROM j GROUP BY cluster)),
        ok AS (SELECT sum(n * (n - 1) / 2) AS v FROM (
               SELECT count(*) n FROM j GROUP BY cluster, person))
        SELECT tp.v, fp.v, ok.v FROM tp, fp, ok"""


def measure(db: Path, truth: Path, min_score: float) -> dict:
    import duckdb

    from leadctl.identity.config import load_identity_config
    from leadctl.identity.suggest import group_suggestions, suggestion_rows
    from leadctl.workspace import Workspace

    con = duckdb.connect(str(db))
    reader = "read_parquet" if truth.suffix == ".parquet" else "read_csv"
    con.execute(f"CREATE TEMP TABLE truth AS SELECT source, lead_id, person "
                f"FROM {reader}('{truth}')")
    ws = Workspace(con, db, read_only=False)
    started = time.perf_counter()
    rows, _ = suggestion_rows(ws, load_identity_config(REPO / "rules"), None, min_score=0.0,
                              skip_reviewed=False)
    seconds = round(time.perf_counter() - started, 2)
    suggestions = group_suggestions(rows)
    con.execute("""CREATE TEMP TABLE person_truth AS SELECT pl.person_id,
        min(t.person) AS person, count(DISTINCT t.person) AS persons
        FROM person_leads pl JOIN leads l USING (lead_key) JOIN truth t USING (source, lead_id)
        GROUP BY pl.person_id""")
    truth_of = {r[0]: r[1] for r in con.execute(
        "SELECT person_id, person FROM person_truth WHERE person_id IN (SELECT unnest(?))",
        [[p for s in suggestions for p in (s["a"], s["b"])] or [""]]).fetchall()}
    by_threshold = {}
    for threshold in sorted({*THRESHOLDS, min_score}):
        chosen = [s for s in suggestions if s["score"] >= threshold]
        correct = sum(truth_of[s["a"]] == truth_of[s["b"]] for s in chosen)
        by_threshold[threshold] = {"suggestions": len(chosen), "correct": correct,
                                   "precision": round(correct / len(chosen), 4) if chosen
                                   else None}
    con.execute("CREATE TEMP TABLE before AS SELECT lead_key, person_id AS cluster "
                "FROM person_leads")
    true_pairs, found, ok = con.execute(pairwise_sql("before")).fetchone()
    accepted = [s for s in suggestions if s["score"] >= min_score]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for s in accepted:  # union-find over the accepted pairs (a few)
        ra, rb = find(s["a"]), find(s["b"])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    merged = [(p, find(p)) for p in parent]
    con.execute("CREATE TEMP TABLE merged (person_id VARCHAR, cluster VARCHAR)")
    if merged:
        con.executemany("INSERT INTO merged VALUES (?, ?)", merged)
    con.execute("CREATE TEMP TABLE after AS SELECT pl.lead_key, coalesce(m.cluster, "
                "pl.person_id) AS cluster FROM person_leads pl LEFT JOIN merged m USING "
                "(person_id)")
    _, found_after, ok_after = con.execute(pairwise_sql("after")).fetchone()
    kinds: dict[str, int] = {}
    for s in accepted:
        for e in s["evidence"]:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    con.close()
    return {
        "suggest_seconds": seconds, "by_threshold": by_threshold, "accepted_at": min_score,
        "accepted_by_kind": kinds,
        "recall_before": round(ok / true_pairs, 4),
        "recall_after": round(ok_after / true_pairs, 4),
        "precision_before": round(ok / found, 4) if found else None,
        "precision_after": round(ok_after / found_after, 4) if found_after else None,
        "true_pairs": int(true_pairs), "correct_pairs_before": int(ok),
        "correct_pairs_after": int(ok_after), "wrong_pairs_added": int(
            (found_after - ok_after) - (found - ok)),
    }


def main(argv: list[str] | None = None) -> None:
    from leadctl.identity.suggest import DEFAULT_MIN_SCORE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("sample", "generate", "datagen"), default="sample")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--persons", type=int, default=1500)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--typos", type=float, default=0.0)
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.data == "sample":
            inbox, truth = REPO / "sample_data" / "inbox", REPO / "sample_data" / "truth.csv"
        elif args.data == "generate":
            subprocess.run([sys.executable, str(REPO / "sample_data" / "generate.py"), "--out",
                            str(root), "--persons", str(args.persons), "--seed",
                            str(args.seed)], check=True, stdout=subprocess.DEVNULL)
            inbox, truth = root / "inbox", root / "truth.csv"
        else:
            subprocess.run([sys.executable, str(REPO / "bench" / "datagen.py"), str(root),
                            "--leads", str(args.leads), "--events", "0", "--seed",
                            str(args.seed), "--extra-fraction", "0"], check=True,
                           stdout=subprocess.DEVNULL)
            inbox, truth = root / "inbox", root / "truth.parquet"
        db = root / "ws.duckdb"
        leadctl(db, "ingest", str(inbox))
        if args.typos:
            import duckdb

            con = duckdb.connect(str(db))
            reader = "read_parquet" if truth.suffix == ".parquet" else "read_csv"
            con.execute(f"CREATE TEMP TABLE truth AS SELECT * FROM {reader}('{truth}')")
            for statement in perturb_sql(args.typos):
                con.execute(statement)
            con.close()
        leadctl(db, "resolve")
        result = measure(db, truth, args.min_score)
    result["data"] = {"data": args.data, "seed": args.seed if args.data != "sample" else 7,
                      "persons": args.persons if args.data == "generate" else None,
                      "leads": args.leads if args.data == "datagen" else None,
                      "typos": args.typos}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
