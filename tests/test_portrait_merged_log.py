"""The portrait and explain of a person a merge formed: the log rows written under the id
it retired are listed among the survivor's own latest by date first (not as written),
and `routing_as_of` is the date of the latest listed row, or of a later sale of the
owner shown (not of another rep's sale under the retired id, whose lock is not shown)."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_INBOX, Cli

SURVIVOR, RETIRED = "P0005ac20bd9a", "P1c0e403b1a56"
# A new lead carrying the survivor's device id and the retired person's phone joins them.
MERGE_CSV = ("lead_id,name,phone,device_id,city,created_at\n"
             "X1,测试,18769916213,08a2f5f9-bdfe-4a72-adcf-03b6b1435a9b,上海,"
             "2026-11-09 10:00:00\n")


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("merged_log")
    cli = Cli(tmp / "ws.duckdb")
    steps = [
        ("run", "--inbox", str(SAMPLE_INBOX), "--as-of", "2026-11-01"),
        ("claim", "public_sea", "--rep", "rep_wang", "--n", "3", "--as-of", "2026-11-02"),
        ("status", RETIRED, "contacting", "--as-of", "2026-11-02"),
        ("sale", RETIRED, "--rep", "rep_wang", "--amount", "100", "--as-of", "2026-11-03"),
        # a repeat sale of a closed lead: no log row
        ("sale", RETIRED, "--rep", "rep_wang", "--amount", "50", "--as-of", "2026-11-05"),
        ("status", RETIRED, "contacting", "--as-of", "2026-11-06"),
        ("sale", SURVIVOR, "--rep", "rep_li", "--as-of", "2026-11-03"),  # written last
    ]
    for step in steps:
        result = cli(*step)
        assert result.exit_code == 0, (step, result.stderr)
    inbox = tmp / "web_new"
    inbox.mkdir()
    (inbox / "web_new.csv").write_text(MERGE_CSV, encoding="utf-8")
    ran = cli("run", "--inbox", str(inbox), "--as-of", "2026-11-10", "--json")
    assert ran.exit_code == 0, ran.stderr
    aliases = cli("portrait", RETIRED, "--json").json()
    assert aliases["person_id"] == SURVIVOR  # the merge kept the survivor's state
    return cli


def test_the_log_of_a_merged_person_is_latest_first_by_date(merged):
    portrait = merged("portrait", SURVIVOR, "--as-of", "2026-11-09", "--json").json()
    explain = merged("explain", SURVIVOR, "--as-of", "2026-11-09", "--json").json()
    expected = [
        ("2026-11-06", "status", "rep_wang", RETIRED),
        ("2026-11-03", "sale", "rep_li", None),      # of one day: as written, latest first
        ("2026-11-03", "sale", "rep_wang", RETIRED),
        ("2026-11-02", "status", "rep_wang", RETIRED),
        ("2026-11-02", "claim", "rep_wang", RETIRED),
    ]
    for log in (portrait["history"], explain["routing"]["log"]):
        assert [(r["as_of"], r["rule"], r["new_owner"], r["recorded_as"]) for r in log] == (
            expected)
    # The text's rows: the latest 3 (then "+2 older"), the 11-06 row first, not pushed out.
    text = merged("portrait", SURVIVOR, "--as-of", "2026-11-09").stdout
    rows = [line.split()[1] for line in text.splitlines() if line.startswith("│ 2026-")]
    assert rows == ["2026-11-06", "2026-11-03", "2026-11-03"]
    assert "+2 older in --json" in text


@pytest.mark.parametrize(("day", "routing_as_of"), [
    ("2026-11-05", "2026-11-03"),  # rep_wang's repeat sale of 11-05 is not rep_li's lock
    ("2026-11-09", "2026-11-06"),  # the latest listed row (under the retired id)
    ("2026-11-10", "2026-11-10"),  # the merge
])
def test_routing_as_of_is_the_latest_listed_row_or_the_owners_sale(merged, day,
                                                                   routing_as_of):
    for command in ("portrait", "explain"):
        data = merged(command, SURVIVOR, "--as-of", day, "--json").json()
        log = data["history"] if command == "portrait" else data["routing"]["log"]
        owner = data["owner"] if command == "portrait" else data["routing"]["state"]["owner"]
        assert (data["routing_as_of"], log[0]["as_of"], owner) == (
            routing_as_of, routing_as_of, "rep_li"), command
