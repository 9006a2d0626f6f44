"""Sums fold night by night exactly as one pass over every night adds them: each value
is added at 6 decimals, so digits past the 6th cannot make the folded sum (stored
rounded) and the full pass (rounded once) differ."""

from __future__ import annotations

from conftest import Cli, write

from leadctl.workspace import reading

LEADS = ("lead_id,name,phone,city,created_at\n"
         "A,Ann,13912340001,上海,2026-01-01 10:00\nB,Bob,13912340002,北京,2026-01-01 10:00\n")
NIGHTS = [("2026-06-30", "A,order_paid,2026-06-25 10:00:00,10.0000004,toys\n"
                         "B,order_paid,2026-06-25 10:00:00,500.0000004,toys\n"),
          ("2026-07-01", "A,order_paid,2026-06-26 10:00:00,10.0000004,toys\n"
                         "B,order_paid,2026-06-26 10:00:00,499.9999992,toys\n")]
COLUMNS = "paid_amount_7d, paid_amount_30d, avg_order_amount_180d, value_tier"


def features(cli: Cli) -> list[tuple]:
    with reading(cli.db) as ws:
        return [tuple(r.values()) for r in ws.rows(
            f"SELECT l.lead_id, {COLUMNS} FROM person_features f JOIN person_leads p "
            "USING (person_id) JOIN leads l USING (lead_key) ORDER BY 1")]


# Sums near 3 billion: adding DOUBLEs in another order (the fold, the full pass) had
# put them a millionth apart (3002469135.782468 against 3002469135.782467).
LARGE = [("2026-06-30", "A,order_paid,2026-06-25 10:00:00,999999999.999999,toys\n"
                        "A,order_paid,2026-06-25 11:00:00,1234567.8912345,toys\n"),
         ("2026-07-01", "A,order_paid,2026-06-26 10:00:00,999999999.999999,toys\n"
                        "A,order_paid,2026-06-26 11:00:00,999999999.999999,toys\n"
                        "A,order_paid,2026-06-26 12:00:00,1234567.8912345,toys\n")]


def test_folded_sums_equal_one_pass_over_every_night(tmp_path):
    assert _nights(tmp_path, NIGHTS) == [
        ("A", 20.0, 20.0, 10.0, "low"), ("B", 999.999999, 999.999999, 500.0, "low")]


def test_folded_sums_of_billions_are_exact_to_the_millionth(tmp_path):
    assert _nights(tmp_path, LARGE) == [
        ("A", 3002469135.782467, 3002469135.782467, 600493827.156493, "medium"),
        ("B", 0.0, 0.0, None, "low")]


def test_an_amount_beyond_10_to_the_18_counts_in_no_sum_nor_average(tmp_path):
    huge = [("2026-06-30", "B,order_paid,2026-06-25 10:00:00,1e30,toys\n"
                           "B,order_paid,2026-06-25 11:00:00,10,toys\n"),
            ("2026-07-01", "B,order_paid,2026-06-26 10:00:00,-2e18,toys\n")]
    assert _nights(tmp_path, huge) == [
        ("A", 0.0, 0.0, None, "low"), ("B", 10.0, 10.0, 10.0, "medium")]


def test_an_amount_is_read_at_15_significant_digits_not_at_9_decimals(tmp_path):
    # fixed at 9 decimals first, 0.0000004999999 was 0.000001 and 1.2345674999 1.234568;
    # through DECIMAL(27, 9), 1234567890123.45 was …123.449958 and 9.99e17 …934.38
    digits = [("2026-06-30", "A,order_paid,2026-06-25 10:00:00,0.0000004999999,toys\n"
                             "A,order_paid,2026-06-25 11:00:00,1.2345674999,toys\n"
                             "B,order_paid,2026-06-25 10:00:00,1234567890123.45,toys\n"),
              ("2026-07-01", "B,order_paid,2026-06-26 10:00:00,9.99e17,toys\n")]
    assert _nights(tmp_path, digits) == [
        ("A", 1.234567, 1.234567, 0.617284, "low"),
        ("B", 9.990012345678902e17, 9.990012345678902e17, 4.995006172839451e17, "medium")]


def _nights(tmp_path, nights) -> list[tuple]:
    """The features after `nights`, the same in a nightly and a --full workspace."""
    nightly, full = Cli(tmp_path / "nightly.duckdb"), Cli(tmp_path / "full.duckdb")
    for night, (day, events) in enumerate(nights):
        inbox = tmp_path / f"night{night}"
        inbox.mkdir()
        if night == 0:
            write(inbox / "leads.csv", LEADS)
        write(inbox / "events.csv", "lead_id,event_type,ts,amount,category\n" + events)
        passes = []
        for cli, extra in ((nightly, ()), (full, ("--full",))):
            ran = cli("run", "--inbox", inbox, "--as-of", day, *extra, "--json")
            assert ran.exit_code == 0, ran.stderr
            passes.append(ran.json()["stages"]["tag"]["recomputed"]["events_pass"])
    assert passes[0] == "folded" and passes[1] != "folded"
    assert features(nightly) == features(full)
    return features(nightly)
