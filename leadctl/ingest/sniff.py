"""Looks at the first bytes of a file: format, encoding, delimiter."""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from leadctl.errors import InputError

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")


@dataclass
class FileFormat:
    format: str  # 'csv' | 'parquet' | 'empty'
    encoding: str = "utf-8"
    delimiter: str = ","
    has_bom: bool = False


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sniff(path: Path, encoding: str | None = None) -> FileFormat:
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if not head.strip():
        return FileFormat("empty")
    if head[:4] == b"PAR1" or path.suffix.lower() in (".parquet", ".pq"):
        return FileFormat("parquet")
    has_bom = head.startswith(codecs.BOM_UTF8)
    if has_bom:
        head = head[len(codecs.BOM_UTF8):]
    if b"\x00" in head:
        raise InputError(f"{path}: binary content (NUL bytes): not a CSV or Parquet file")
    enc = encoding or _detect_encoding(head)
    text = head.decode(_codec(enc), errors="replace")
    header = text.splitlines()[0] if text else ""
    return FileFormat("csv", enc, _detect_delimiter(header), has_bom)


def _codec(enc: str) -> str:
    try:
        return codecs.lookup(enc).name
    except LookupError:
        raise InputError(f"unknown encoding {enc!r}") from None


def _detect_encoding(head: bytes) -> str:
    # A truncated multi-byte char at the sample's end must not fail UTF-8.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        # Mostly UTF-8 with damaged bytes: DuckDB rejects just the damaged rows.
        return "utf-8"


def _detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def transcode_to_utf8(path: Path, encoding: str) -> tuple[Path, int]:
    """Streams a non-UTF-8 file into a temporary UTF-8 copy DuckDB can read.

    Returns (temp path, number of undecodable bytes replaced).
    """
    decoder = codecs.getincrementaldecoder(_codec(encoding))(errors="replace")
    fd, tmp = tempfile.mkstemp(prefix="leadctl-", suffix=".csv")
    replaced = 0
    with open(path, "rb") as src, os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
        for chunk in iter(lambda: src.read(4 * 1024 * 1024), b""):
            text = decoder.decode(chunk)
            replaced += text.count("\ufffd")
            dst.write(text)
        dst.write(decoder.decode(b"", final=True))
    return Path(tmp), replaced
