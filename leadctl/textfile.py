"""Small text files leadctl writes (rule fragments, overrides): whole or not at all."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from leadctl.errors import InputError, UsageError

# Written as \uXXXX escapes (a YAML double-quoted scalar reads them back as the same
# text): what JSON leaves raw but YAML cannot read back as itself (DEL, the C1 controls:
# NEL would come back as a space; the line and paragraph separators, non-characters), and
# the bidirectional overrides and isolates (U+202A-202E, U+2066-2069), which would reorder
# an entry as a command prints it and as an editor or `git diff` shows the file.
_YAML_ESCAPED = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff\u202a-\u202e\u2066-\u2069]")


def yaml_quoted(text: str) -> str:
    """`text` as a YAML double-quoted scalar that reads back as exactly `text`."""
    return _YAML_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}",
                             json.dumps(text, ensure_ascii=False))


def written_path(path: Path) -> Path:
    """The file a write of `path` replaces: a link (rules kept in another checkout) is
    written through, the file it names gets the text and the link stays a link."""
    return path.resolve() if path.is_symlink() else path


def write_text_file(path: Path | str, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` through a temp file beside it renamed over it: a
    full disk leaves the old file (or none), never a half-written one. A folder as the
    name or a missing folder is a UsageError, a write the file system refuses an
    InputError naming the file (exit 2, not an internal error)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder: give a file name")
    target = written_path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"directory {folder} does not exist")
    tmp = None
    try:  # a temp name of its own: two writers never share one
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        tmp = Path(name)
        # The file's own mode (mkstemp makes 0600: a group of stewards, or the nightly job
        # as another user, could no longer read it); a new file's as the umask says
        os.fchmod(fd, stat.S_IMODE(target.stat().st_mode) if target.exists()
                  else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):  # a folder turned unwritable: tell why the
                tmp.unlink(missing_ok=True)     # write failed, not that this did
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # read by setting it: put back at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def editing(path: Path | str) -> Iterator[None]:
    """One read-change-write of `path` at a time, across processes (two `identity link`
    appending at once each kept only its own entry): an exclusive lock on its folder for
    the block (the file itself is replaced by each write; no lock file left in rules/):
    the folder of the file written, so edits through a link and of its target share it."""
    path = written_path(Path(path))
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the other edit takes milliseconds: wait for it
        yield
    finally:
        os.close(fd)
