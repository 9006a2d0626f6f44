"""Shared fixtures: run the real CLI against a workspace in a temp folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
SAMPLE_INBOX = REPO / "sample_data" / "inbox"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


class Cli:
    def __init__(self, db: Path, rules: Path = RULES):
        self.db = db
        self.rules = rules

    def __call__(self, *args: str, env: dict | None = None) -> CliResult:
        from leadctl.cli.app import app

        result = CliRunner().invoke(
            app, ["--db", str(self.db), "--rules", str(self.rules), *map(str, args)], env=env
        )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "ws.duckdb")


def db_rows(cli: Cli, sql: str) -> list[tuple]:
    """The rows of `sql` in the workspace of `cli`, read apart (read-only)."""
    con = duckdb.connect(str(cli.db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def write(path: Path, text: str, encoding: str = "utf-8", bom: bool = False) -> Path:
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@pytest.fixture(scope="session", autouse=True)
def shipped_rules_untouched():
    """No test may write into the shipped rules/ (identity link/accept append there)."""
    before = {p.name: p.read_bytes() for p in RULES.rglob("*") if p.is_file()}
    yield
    after = {p.name: p.read_bytes() for p in RULES.rglob("*") if p.is_file()}
    assert after == before, "a test changed the shipped rules/ folder"


def rules_edited(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the shipped rules (without their fixtures) in `tmp_path`, with `old`
    replaced by `new` once in `file`."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    text = (rules / file).read_text(encoding="utf-8")
    assert old in text
    (rules / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    return rules


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """The shipped rules without their fixtures, and an empty tests/ folder (each test
    adds its own)."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target, ignore=shutil.ignore_patterns("tests"))
    (target / "tests").mkdir()
    return target
