"""Small text files leadctl writes (rule fragments, overrides): whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from leadctl.errors import InputError, UsageError


def write_text_file(path: Path | str, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` through a temp file beside it renamed over it: a
    full disk leaves the old file (or none), never a half-written one. A folder as the
    name or a missing folder is a UsageError, a write the file system refuses an
    InputError naming the file (exit 2, not an internal error)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{path} is a folder: give a file name")
    if not folder.is_dir():
        raise UsageError(f"directory {folder} does not exist")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path
