"""`leadctl init`: a new workspace with the documented starter rules."""

from __future__ import annotations

import shutil
from pathlib import Path

from leadctl.errors import InputError, WorkspaceError
from leadctl.workspace import is_root_folder, open_writer, refuse_other_file


def starter_rules_dir() -> Path:
    """Packaged starter rules (wheel) or the repository's rules/ (editable install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "starter_rules", here.parent / "rules"):
        if (candidate / "tags.yaml").exists() or (candidate / "identity.yaml").exists():
            return candidate
    raise WorkspaceError("starter rules are missing from this installation")


def init_workspace(directory: Path, db: Path | None, rules: Path | None) -> dict:
    """The workspace and its starter rules. Every path is checked before anything is
    made: a refused init leaves nothing behind."""
    for folder, what in ((directory, "workspace"), (rules, "rules")):
        if folder is not None and is_root_folder(folder):  # `init "$DIR/"` with DIR unset
            raise InputError(f"{folder} is the root folder (an unset variable before a /?): "
                             f"name the {what} folder")
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is a file, not a folder: give a folder for the workspace")
    db = db or directory / "leadctl.duckdb"
    rules = rules or directory / "rules"
    created_db = not db.exists()
    refuse_other_file(db)  # not a workspace (a CSV): refused before the rules are written
    if db.parent != directory and not db.parent.is_dir():  # (directory is made below)
        raise WorkspaceError(f"directory {db.parent} does not exist")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only or pseudo file system, a file on the way
        raise InputError(f"cannot create the folder {directory}: {exc.strerror}") from None
    copied, kept = [], []
    source = starter_rules_dir()
    # The rules first: a folder that cannot hold them (a file there, a read-only mount)
    # is the user's to fix, exit 2, before any workspace is created.
    for src in sorted(source.rglob("*.yaml")):
        dest = rules / src.relative_to(source)
        if dest.exists():
            kept.append(str(dest))
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.resolve() != dest.resolve():
                shutil.copyfile(src, dest)
        except OSError as exc:
            raise InputError(f"cannot write the rules to {dest.parent}: "
                             f"{exc.strerror or exc}") from None
        copied.append(str(dest))
    with open_writer(db, create=True):
        pass  # schema is created by the writer
    return {"db": str(db), "db_created": created_db, "rules": str(rules),
            "rules_copied": copied, "rules_kept": kept}
