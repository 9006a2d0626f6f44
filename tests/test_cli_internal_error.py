"""An internal error is exit 3 with one line (and with --json the failure document),
with or without --debug; --debug adds the traceback on stderr, nothing else changes. A
workspace path that is a directory is a user error (exit 2), not an internal one."""

from __future__ import annotations

import pytest

from leadctl import api
from tests.conftest import Cli


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_is_exit_3_with_its_document_also_under_debug(cli, monkeypatch,
                                                                         debug):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "find", broken)
    result = cli(*(["--debug"] if debug else []), "find", "lead_count > 1", "--json")
    assert result.exit_code == 3
    assert result.json() == {"error": {
        "type": "InternalError", "location": None,
        "message": "internal error: RuntimeError: boom"
                   + ("" if debug else " (rerun with --debug for details)")}, "exit_code": 3}
    assert ("Traceback (most recent call last)" in result.stderr) is debug
    assert result.stderr.endswith("error: internal error: RuntimeError: boom"
                                  + ("" if debug else " (rerun with --debug for details)")
                                  + "\n")


@pytest.mark.parametrize("command", [
    ["init"], ["ingest", "x.csv"], ["resolve"], ["run", "--inbox", "."], ["find", "a > 1"],
    ["portrait", "x"], ["runs"]])
def test_a_directory_given_as_the_workspace_is_exit_2_for_readers_and_writers(
        tmp_path, command):
    folder = tmp_path / "dir.duckdb"
    folder.mkdir()
    result = Cli(folder)(*command)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"error: {folder} is a directory, not a workspace file: "
                                  "pass --db FILE (e.g. --db leads.duckdb)\n")
    assert list(folder.iterdir()) == []
