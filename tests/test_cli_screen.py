"""What a user sees on a screen: tables fit the width, set-up, completion, progress."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from rich.cells import cell_len

from leadctl import api
from tests.conftest import REPO, RULES, SAMPLE_INBOX, Cli

TABLE_COMMANDS = [
    ("run", "--inbox", str(SAMPLE_INBOX), "--as-of", "2026-11-01"),
    ("runs",),
    ("ingest", str(SAMPLE_INBOX)),
    ("resolve",),
    ("tag", "--as-of", "2026-11-01", "--dry-run"),
    ("score", "--as-of", "2026-11-01", "--dry-run"),
    ("route", "--as-of", "2026-11-01", "--dry-run"),
    ("find", "value_tier = 'high'"),
    ("report", "channels"),
    ("report", "funnel", "app_install", "--by", "utm_source,utm_content"),
    ("explain", "BD100769"),
    ("portrait", "13800000001"),
    ("rules", "check"),
    ("rules", "test"),
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("screen") / "ws.duckdb")
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    return cli


@pytest.mark.parametrize("width", [100, 80])
def test_every_table_fits_the_width(sample, width):
    for args in TABLE_COMMANDS:
        result = sample(*args, env={"COLUMNS": str(width)})
        assert result.exit_code == 0, (args, result.stderr)
        widest = max(result.stdout.splitlines(), key=cell_len)
        assert cell_len(widest) <= width, (args, widest)


def test_the_declared_columns_drop_first_with_a_note(sample):
    lines = sample("report", "channels", env={"COLUMNS": "80"}).stdout.splitlines()
    # The channel-value columns (new, dup other, cost/lead) outlast the counts.
    assert " ".join(lines[-2:]) == (
        "(11 columns hidden at 80 columns: persons, rejects, A, B, C, D, avg score, sold, "
        "cost, cost/new, amount; use --json or -o)")
    assert re.split(r"\W+", lines[2].strip("┃ ")) == [
        "source", "leads", "dup", "reject", "to", "sales", "new", "dup", "other", "cost",
        "lead"]
    full = sample("report", "channels", "--json").json()
    hidden = ("persons", "rejects", "grade_a", "grade_b", "grade_c", "grade_d", "avg_score",
              "sold", "cost_per_new", "sold_amount")
    assert {k: full["total"][k] for k in hidden} == {  # --json keeps them
        "persons": 1535, "rejects": 3, "grade_a": 107, "grade_b": 255, "grade_c": 317,
        "grade_d": 856, "avg_score": 24.58, "sold": 0, "cost_per_new": 77.68,
        "sold_amount": 0.0}


def test_the_cost_outlasts_the_average_score(sample):
    # A channel paid for that brought no lead shows only its cost: at 100 columns it stays.
    lines = sample("report", "channels", env={"COLUMNS": "100"}).stdout.splitlines()
    assert re.split(r"\W+", lines[2].strip("┃ ")) == [
        "source", "leads", "dup", "reject", "to", "sales", "new", "dup", "other", "cost",
        "cost", "lead"]
    total = next(line for line in lines if line.startswith("│ (total)"))
    assert total.split("│")[8].strip() == "79,000"


def test_shell_completion_is_available(sample):
    # What `--show-completion bash` prints, without detecting the calling shell (there
    # may be none: a detached CI job).
    script = sample(env={"_LEADCTL_COMPLETE": "source_bash"})
    assert script.exit_code == 0
    assert script.stdout.rstrip().endswith("complete -o default -F _leadctl_completion leadctl")
    words = sample(env={"_LEADCTL_COMPLETE": "complete_bash", "COMP_WORDS": "leadctl rules ",
                        "COMP_CWORD": "2"})
    assert words.stdout == "check\ntest\n"


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1]
    install, tests = re.findall(r"```sh\n(.*?)\n```", quick, re.S)[:2]
    assert install.split(" && ")[1] == ".venv/bin/pip install -q ."  # no [dev], no Spark
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == tests == (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && "
        ".venv/bin/python -m pytest")


def test_resolve_reports_each_step_as_progress(tmp_path):
    db = tmp_path / "ws.duckdb"
    Cli(db)("ingest", SAMPLE_INBOX / "seo_forms.csv")
    steps = []
    api.resolve(db, RULES, lambda done, total, label: steps.append((done, total, label)))
    assert steps == [(0, 6, "normalise"), (1, 6, "status"), (2, 6, "components"),
                     (3, 6, "person_ids"), (4, 6, "persons"), (5, 6, "subjects"), (6, 6, "")]


@pytest.mark.parametrize("encoding", ["ascii", "gbk"])
def test_output_in_an_encoding_that_lacks_characters_prints_them_replaced(sample, encoding):
    # (a GBK locale: the portrait's ☎ stopped it with exit 3, find with a traceback)

    def run(*args: str, env: dict) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "leadctl", "--db", str(sample.db),
                               "--rules", str(RULES), *args], capture_output=True, cwd=REPO,
                              env={**os.environ, **env}, timeout=120)

    narrow = {"PYTHONIOENCODING": encoding}
    portrait = run("portrait", "13800000001", env=narrow)
    assert (portrait.returncode, portrait.stderr) == (0, b"")
    assert "? 138****0001" in portrait.stdout.decode(encoding)
    found = run("find", "grade = 'A'", "--limit", "3", "--json", env=narrow)
    assert found.returncode == 0 and found.stdout.isascii()
    assert json.loads(found.stdout) == json.loads(
        run("find", "grade = 'A'", "--limit", "3", "--json",
            env={"PYTHONIOENCODING": "utf-8"}).stdout)
