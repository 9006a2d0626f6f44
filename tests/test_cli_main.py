"""The entry point's fast portrait path: same output as the Typer command, no typer import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from leadctl.cli.main import parse_fast_portrait


@pytest.mark.parametrize("argv,expected", [
    (["portrait", "138 0000 0001"], {"query": "138 0000 0001"}),
    (["--db", "x.duckdb", "portrait", "L1", "--json"], {"db": "x.duckdb", "query": "L1",
                                                         "json_out": True}),
    (["--db=x.duckdb", "--rules", "r", "portrait", "--reveal", "--as-of", "2026-11-01", "L1"],
     {"db": "x.duckdb", "query": "L1", "reveal": True, "as_of": "2026-11-01"}),
])
def test_plain_portrait_calls_take_the_fast_path(argv, expected, monkeypatch):
    monkeypatch.delenv("LEADCTL_DB", raising=False)
    opts = parse_fast_portrait(argv)
    assert opts == {"db": None, "json_out": False, "reveal": False, "as_of": None,
                    "query": None, **expected}


@pytest.mark.parametrize("argv", [
    ["portrait", "--help"], ["portrait"], ["portrait", "a", "b"], ["--debug", "portrait", "a"],
    ["portrait", "a", "--bogus"], ["find", "x"], [], ["--db"], ["portrait", "a", "--as-of"],
])
def test_anything_else_goes_to_typer(argv):
    assert parse_fast_portrait(argv) is None


def test_fast_path_matches_typer_and_does_not_import_typer(tmp_path):
    from tests.conftest import SAMPLE_INBOX, Cli

    db = tmp_path / "ws.duckdb"
    cli = Cli(db)
    assert cli("run", "--inbox", SAMPLE_INBOX, "--as-of", "2026-11-01").exit_code == 0
    typer_out = cli("portrait", "13800000001", "--json").stdout
    code = ("import sys; from leadctl.cli.main import main; sys.argv = ['leadctl', '--db', "
            f"{str(db)!r}, 'portrait', '13800000001', '--json']\n"
            "try:\n    main()\nexcept SystemExit as e:\n"
            "    assert 'typer' not in sys.modules, 'typer imported'\n    raise")
    fast = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout == typer_out
    missing = subprocess.run([sys.executable, "-m", "leadctl", "--db", str(db), "portrait",
                              "nobody@nowhere.cn"], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")


def test_log_file_masks_personal_data(tmp_path):
    import logging

    from tests.conftest import Cli

    cli = Cli(tmp_path / "ws.duckdb")
    log = tmp_path / "run.log"
    assert cli("--log-file", log, "init", tmp_path).exit_code == 0
    logging.getLogger("leadctl").info("lookup 13812345678 for a@b.cn")
    text = log.read_text(encoding="utf-8")
    assert "138****5678" in text and "13812345678" not in text
