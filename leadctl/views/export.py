"""`leadctl export WHAT -o FILE`: streams a query to CSV or Parquet with COPY."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from leadctl.errors import InputError, UsageError
from leadctl.sqltext import ident, literal
from leadctl.workspace import Workspace, kill_point, own_files, signals_held

# Each export is a query over the published tables (pure strings).
EXPORT_QUERIES: dict[str, str] = {
    "leads": """
        SELECT l.lead_id, l.source, pl.person_id, l.name, l.phone, l.email, l.wechat,
               l.device_id, l.id_card, l.city, l.province, l.created_at, l.utm_source,
               l.utm_medium, l.utm_campaign, l.utm_content, l.utm_term, l.channel,
               l.attributes, f.path AS file, l.row_number
        FROM leads l LEFT JOIN person_leads pl USING (lead_key)
        LEFT JOIN ingested_files f USING (file_id)
        ORDER BY l.lead_key""",
    "rejects": """
        SELECT f.path AS file, r.source, r.kind, r.row_number, r.reason, r.detail, r.raw
        FROM rejects r LEFT JOIN ingested_files f USING (file_id)
        ORDER BY r.file_id, r.row_number""",
    "events": """
        SELECT e.source, e.subject, sp.person_id, e.event_type, e.ts, e.amount, e.category,
               e.attributes
        FROM events e LEFT JOIN subject_persons sp USING (subject)
        ORDER BY e.file_id, e.row_number""",
    # the golden record, each tag a column, the score and routing state (as `find` has
    # them): one row per person, what a CRM import needs ({tags}: persons_export_sql)
    "persons": """
        SELECT p.*{tags}, s.score, s.grade, o.pool, o.owner, o.status, o.status_since,
               o.assigned_at, o.locked_until, coalesce(o.dormant, false) AS dormant
        FROM persons p LEFT JOIN person_features f ON f.person_id = p.person_id
        LEFT JOIN scores s ON s.person_id = p.person_id
        LEFT JOIN ownership o ON o.person_id = p.person_id
        ORDER BY p.person_id""",
    "blocked": "SELECT * FROM blocked_identifiers ORDER BY id_type, value",
    "history": "SELECT * FROM identity_history "
               "ORDER BY run_id, person_id, change, old_person_ids, leads",
    "tags": "SELECT person_id, tag, value, as_of, run_id FROM tags ORDER BY person_id, tag",
    "scores": """
        SELECT s.person_id, s.score, s.grade, s.as_of, b.rule, b.points
        FROM scores s LEFT JOIN score_breakdown b USING (person_id)
        ORDER BY s.person_id, b.rule""",
    "assignments": "SELECT * FROM assignments ORDER BY logged_at, person_id",
    "runs": "SELECT * FROM runs ORDER BY run_id",
}


def export_formats(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix == ".csv":
        return "FORMAT csv, HEADER true"
    if suffix in (".parquet", ".pq"):
        return "FORMAT parquet"
    raise UsageError(f"cannot tell the format of {out}: use a .csv or .parquet file name")


def copy_sql(query: str, out: Path, to: Path | None = None) -> str:
    """COPY to `to` (default `out`) in the format `out`'s name gives."""
    return f"COPY ({query}) TO {literal(str(to or out))} ({export_formats(out)})"


def check_output_file(out: Path, workspace: Path | None = None) -> None:
    """An -o file we can write, checked before any work (and before a command records
    anything): a .csv/.parquet name, in an existing folder we may write to, not a
    folder itself, not the `workspace` or one of its files, also through a link
    (UsageError, exit 2)."""
    export_formats(out)
    refuse_workspace_file("-o", out, workspace)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"directory {folder} does not exist")
    if out.is_dir():
        raise UsageError(f"{out} is a folder: give a file name for -o")
    if not os.access(out if out.exists() else folder, os.W_OK):
        raise UsageError(f"cannot write {out}: permission denied")


def refuse_workspace_file(option: str, path: Path, workspace: Path | None, *,
                          instead: str = "write the result to another file") -> None:
    """A file named for writing (`-o`, `--log-file`) that is the `workspace` or one of its
    files, also through a link: a UsageError (exit 2), nothing written; the message ends
    with what to do `instead`."""
    if workspace is not None and Path(os.path.realpath(path)) in own_files(workspace):
        raise UsageError(f"{option} {path} is the workspace {workspace} or one of its files: "
                         f"{instead}")


def copy_to_file(ws: Workspace, query: str, out: Path) -> int:
    """Streams `query` to `out` (CSV/Parquet; its caller has checked it with
    `check_output_file` before any work); returns the rows written. A file system that
    still refuses the write (a full disk, a read-only mount) is an InputError naming the
    file, not an internal error."""
    with file_in_place(out) as write:
        return write(ws, query)


@contextlib.contextmanager
def file_in_place(out: Path) -> Iterator[Callable[[Workspace, str], int]]:
    """`write(ws, query)` streams the query to a file beside `out` (returning its rows),
    which replaces `out` when the block ends without an error, and is removed otherwise:
    a command that records what it wrote (`audience export`) puts the file in place only
    after its record is published, and also when a signal stops it after that (the file
    goes with its record)."""
    # Written beside the file under a name of our own, then renamed over it: whole or not
    # at all, and nothing else touched (DuckDB's own temporary name for an existing
    # file, `tmp_<name>`, replaced a user's file of that name).
    target = Path(os.path.realpath(out))  # through a link, the file it names
    part = target.with_name(part_name(target.name, uuid.uuid4().hex[:12]))
    writers: list[Workspace] = []

    def write(ws: Workspace, query: str) -> int:
        writers.append(ws)
        with _write_errors(out, part):
            return int(ws.execute(copy_sql(query, out, part)).fetchone()[0])  # COPY's count

    def put_in_place() -> None:
        # a signal during the rename acts after it: the command stops with its file whole
        with _write_errors(out, part), signals_held():
            if part.exists():
                if target.exists():
                    shutil.copymode(target, part)
                os.replace(part, target)
                kill_point("file rename")

    try:
        yield write
    except (KeyboardInterrupt, SystemExit):
        if any(ws.published for ws in writers):
            put_in_place()
        raise
    else:
        put_in_place()
    finally:
        with contextlib.suppress(OSError):  # never in place of the error that ended it
            part.unlink(missing_ok=True)


# The longest file name most file systems take (bytes): the part file's name adds ~20.
NAME_MAX = 255


def part_name(name: str, tag: str) -> str:
    """The hidden name beside a file of `name` that it is written under, within NAME_MAX
    bytes however long `name` is (a name cut short keeps whole characters)."""
    room = NAME_MAX - len(f"..{tag}.part".encode())
    # (bytes no UTF-8 reads, of a name reached through a link, are left out: COPY cannot
    # write a name holding them)
    kept = os.fsencode(name)[:room].decode("utf-8", "ignore")
    return f".{kept}.{tag}.part"


@contextlib.contextmanager
def _write_errors(out: Path, part: Path) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ in ("IOException", "PermissionException") or \
                isinstance(exc, OSError):
            reason = str(exc).splitlines()[0].replace(str(part), str(out))
            raise InputError(f"cannot write {out}: {reason}") from exc
        raise


def persons_export_sql(tag_columns: list[str]) -> str:
    """The `persons` export with these tag columns of person_features."""
    return EXPORT_QUERIES["persons"].format(tags="".join(f", f.{ident(c)}"
                                                         for c in tag_columns))


def export_table(ws: Workspace, what: str, out: Path) -> dict:
    query = EXPORT_QUERIES.get(what)
    if query is None:
        raise UsageError(f"cannot export {what!r}: choose one of {', '.join(EXPORT_QUERIES)}")
    if what == "persons":  # the tags stored: person_features' columns that are no person's
        person = {name for name, _ in ws.columns("persons")}
        query = persons_export_sql([name for name, _ in ws.columns("person_features")
                                    if name not in person])
    check_output_file(out, ws.path)
    return {"what": what, "file": str(out), "rows": copy_to_file(ws, query, out)}
