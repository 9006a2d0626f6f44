"""Identifier normalisation keys a value alike on both engines: the same builders
(`normalize.keyed_sql`) run by DuckDB and by the Spark executor (the real translation)
over the same texts: Unicode spaces, ASCII whitespace, full-width forms."""

from __future__ import annotations

import pytest

from leadctl.identity import normalize
from tests.test_spark_parity import MISSING

pytestmark = [pytest.mark.spark, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

TEXTS = {
    "phone": ["138\u20091234\u20095678", "138\u202f1234\u202f5678", "\u2003138 1234 5678",
              "138\t1234\n5678", "138\x0b1234\x0b5678", "138\u20281234\u20285678",
              "１３８\u30001234\u00a05678", "+86 (0)138-1234-5678"],
    "email": ["li.si\uff20qq.com\u2009", "MAILTO:Li.Si@QQ.com"],
    "id_card": ["440106\u200919880512031x", "４４０１０６１９８８０５１２０３１Ｘ"],
    "wechat": ["\u202fWX１２３４５a"],
}


def test_identifiers_key_alike_on_both_engines():
    import duckdb

    from leadctl.spark.executor import SparkWorkspace, spark_session

    rows = [(f"{kind}{i}", kind, text) for kind, texts in TEXTS.items()
            for i, text in enumerate(texts)]
    make = normalize.keyed_values_sql("k", normalize.values_table_sql(rows))
    query = "SELECT ref, key_value, valid FROM k ORDER BY ref"
    con = duckdb.connect()
    con.execute(make)
    expected = con.execute(query).fetchall()
    assert dict((ref, (key, valid)) for ref, key, valid in expected) == {
        "phone0": ("+8613812345678", True), "phone1": ("+8613812345678", True),
        "phone2": ("+8613812345678", True), "phone3": ("+8613812345678", True),
        # a vertical tab and a line separator group no number (RE2's `\s` and Java's differ)
        "phone4": ("138\x0b1234\x0b5678", False), "phone5": ("138\u20281234\u20285678", False),
        "phone6": ("+8613812345678", True), "phone7": ("+8613812345678", True),
        "email0": ("li.si@qq.com", True), "email1": ("li.si@qq.com", True),
        "id_card0": ("44010619880512031X", True), "id_card1": ("44010619880512031X", True),
        "wechat0": ("wx12345a", True)}
    spark = SparkWorkspace(spark_session("local[1]"))
    try:
        spark.execute(make)
        assert [tuple(r) for r in spark.execute(query).fetchall()] == expected
    finally:
        spark.close()
