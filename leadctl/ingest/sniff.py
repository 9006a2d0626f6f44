"""Looks at the first bytes of a file: format, encoding, delimiter."""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from leadctl.errors import InputError
from leadctl.ingest.sql import SPARK_TRIMMED
from leadctl.workspace import temp_copy

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
# Characters no text export contains: C0 controls but tab/CR/LF, DEL, undecodable bytes.
JUNK_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
JUNK_SHARE = 0.01  # more junk characters than this in the sample: not a text file
# ...and at least this many: a small file's one damaged byte or stray NUL (1 in 55
# characters) is its row's fault, rejected with it; a binary file has NULs and control
# bytes by the dozen in its first hundred (a PNG's or a ZIP's header alone has 8).
JUNK_MIN = 8
SAMPLE_RECORDS = 200  # records checked for a consistent field count
UTF8 = ("utf-8", "utf-8-sig")


@dataclass
class FileFormat:
    format: str  # 'csv' | 'parquet' | 'empty'
    encoding: str = "utf-8"
    delimiter: str = ","
    has_bom: bool = False
    conflict: str = ""  # a forced encoding contradicts the file (BOM, valid UTF-8)
    mixed_newlines: bool = False  # read through a copy with LF line endings
    blank_after_bom: bool = False  # read through a copy without the byte order mark
    # A line of white space alone before the header: DuckDB's reader takes it for the
    # header (Spark skips it, as both skip an empty line); read through a copy where it
    # is empty.
    white_before_header: bool = False
    # A CRLF line (empty) before the header: DuckDB's sniffer names a one-column file's
    # column `column0` then (the header lost: "no identifier column"); read through a copy
    # with LF line endings, as it reads an LF file's blank line before the header.
    crlf_before_header: bool = False
    # The file ends with a DOS end-of-file mark (Ctrl-Z, 0x1A: old Windows tools write
    # one): read through a copy without it, not loaded as a last line or character.
    eof_mark: bool = False
    # An apostrophe in the sample: DuckDB's sniffer may take it for the quote character
    # (`'Tom'` would load as Tom); the reader is asked which quote it would use.
    apostrophes: bool = False
    # (size, mtime) when it was hashed: a file that differs after loading was still
    # being written, and its digest is not of the rows loaded.
    stat: tuple[int, int] | None = None
    # Read as UTF-8, its bytes that are not look like this encoding (`latin-1`: accented
    # letters alone between ASCII letters, and no UTF-8 beside them): said to the user,
    # who may name it with --encoding; its rows are rejected (invalid_encoding) meanwhile.
    looks_like: str = ""


EOF_MARK = b"\x1a"


def ends_with_eof_mark(path: Path, encoding: str = "utf-8") -> bool:
    """Whether the file's last character is the mark (in UTF-16, two bytes in the file's
    byte order; such a file is read through a transcoded copy, which leaves it out)."""
    with open(path, "rb") as fh:
        mark = EOF_MARK
        if "16" in encoding:
            big = "be" in encoding.lower() or (
                "le" not in encoding.lower() and fh.read(2) == codecs.BOM_UTF16_BE)
            mark = b"\x00\x1a" if big else b"\x1a\x00"
        fh.seek(0, os.SEEK_END)
        if fh.tell() < len(mark):
            return False
        fh.seek(-len(mark), os.SEEK_END)
        return fh.read(len(mark)) == mark


def without_eof_mark(path: Path, encoding: str = "utf-8") -> Path:
    """A temporary copy of `path` without its final end-of-file mark (two bytes in
    UTF-16)."""
    fd, tmp = temp_copy(".csv")
    os.close(fd)
    shutil.copyfile(path, tmp)
    os.truncate(tmp, os.path.getsize(tmp) - (2 if "16" in encoding else len(EOF_MARK)))
    return Path(tmp)


def has_blank_line(path: Path, spaces: bool = False) -> bool:
    """Whether a line of the (UTF-8 or ASCII-compatible) file is empty (with `spaces`,
    also one of white space alone, as Spark skips it): a blank line the reader skips as
    no record, or such a line inside a quoted value."""
    blank = _BLANK_OR_WHITE_LINE if spaces else _BLANK_LINE
    with open(path, "rb") as fh:
        tail = b"\n"  # the file's first line starts after a line end
        for chunk in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            window = tail + chunk
            if blank.search(window):
                return True
            # what a blank line across the chunks' edge starts with: the last line end
            # (and the byte before it: a CRLF's CR) and the white space after it, if
            # that is all that follows it (kept short: one space stands for any)
            end = _LINE_END_THEN_WHITE.search(window)
            tail = b"" if end is None else (
                window[max(end.start() - 1, 0):end.start() + 1]
                + (b" " if end.end() - end.start() > 1 else b""))
    return False


# Spark's trim (SPARK_TRIMMED) but for line ends: the white space of a blank line
_WHITE = "[\x01-\x09\x0b\x0c\x0e-\x20]"
_WHITE_BYTES = _WHITE.encode()
_BLANK_LINE = re.compile(b"\n[\r\n]|\r\r")  # (a line starting with a line end)
_BLANK_OR_WHITE_LINE = re.compile(b"\n" + _WHITE_BYTES + b"*[\r\n]|\r" + _WHITE_BYTES
                                  + b"*\r")
_LINE_END_THEN_WHITE = re.compile(b"[\r\n]" + _WHITE_BYTES + b"*\\Z")


def hash_and_line_endings(path: Path, text: bool = True) -> tuple[str, bool]:
    """The file's SHA-256 and, for a `text` file, whether its line endings are mixed (CRLF
    and bare LF lines, or a lone CR), in one read: DuckDB's CSV sniffer gives up on such a
    file. A Parquet file's bytes are not counted."""
    digest = hashlib.sha256()
    cr = crlf = lf = 0
    last = b""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            digest.update(chunk)
            if not text:
                continue
            cr += chunk.count(b"\r")
            lf += chunk.count(b"\n")
            crlf += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            last = chunk[-1:]
    return digest.hexdigest(), cr > 0 and not cr == crlf == lf


def sniff(path: Path, encoding: str | None = None) -> FileFormat:
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if _blank(head):
        return FileFormat("empty")
    if head[:4] == b"PAR1":  # by content, not by name: a CSV saved as .parquet is a CSV
        return FileFormat("parquet")
    truncated = len(head) == SAMPLE_BYTES  # the sample's last line may be cut
    if encoding is not None:
        _refuse_missing_bom(head, codec_name(encoding), encoding)
    wide = _utf16(head, encoding)
    if wide:  # Excel's "Unicode text": UTF-16 with a byte order mark, tab-separated
        text = head.decode(wide, errors="replace")
        if truncated:
            text = text[: text.rfind("\n") + 1] or text
        elif text.endswith("\x1a"):  # a final end-of-file mark is no character of it
            text = text[:-1]
        header = _header_line(text.lstrip("\ufeff"))
        delimiter = _detect_delimiter(header)
        _refuse_junk(text, delimiter)
        return FileFormat("csv", wide, delimiter, True, apostrophes="'" in text,
                          **_lines_before_header(text.lstrip("\ufeff")))
    if not truncated and head.endswith(EOF_MARK):
        head = head[:-len(EOF_MARK)]
    has_bom = head.startswith(codecs.BOM_UTF8)
    if has_bom:
        head = head[len(codecs.BOM_UTF8):]
    # Binary (or UTF-16 without its mark) has NULs everywhere; a stray one in a cell is a
    # character of that cell, not a reason to refuse the file.
    nuls = head.count(b"\x00")
    if nuls > len(head) // 100 and nuls >= JUNK_MIN:  # over 1% of the sample
        wide = _bare_utf16(head)
        raise InputError("binary content (NUL bytes): not a CSV or Parquet file" + (
            f" (it looks like UTF-16 text without its byte order mark: --encoding {wide})"
            if wide else ""))
    judged = _non_ascii_sample(path, head) if truncated and not has_bom else head
    enc = encoding or _detect_encoding(judged)
    looks_like = "latin-1" if encoding is None and _latin1_alone(judged) else ""
    conflict = _encoding_conflict(judged, has_bom, enc) if encoding else ""
    # Judged as what the file is, also when a contradicting --encoding is forced (a
    # Latin-1 file's letters are no junk: its rows are rejected, not the file failed).
    text = head.decode(looks_like or codec_name("utf-8" if conflict else enc),
                       errors="replace")
    if truncated:
        text = text[: text.rfind("\n") + 1] or text
    header = _header_line(text)
    delimiter = _detect_delimiter(header)
    _refuse_junk(text, delimiter)
    # DuckDB's reader takes the blank line after a byte order mark for the header (it
    # skips blank lines before a header otherwise, as Spark does after the mark too)
    blank_after_bom = has_bom and head.lstrip(b" \t")[:1] in (b"\r", b"\n")
    return FileFormat("csv", enc, delimiter, has_bom, conflict,
                      blank_after_bom=blank_after_bom, apostrophes=b"'" in head,
                      looks_like=looks_like, **_lines_before_header(text))


def _header_line(text: str) -> str:
    """The first line with something on it: the readers skip blank lines before the header,
    so the delimiter is told from the header, not from an empty line."""
    return next((line for line in text.splitlines() if line.strip()), "")


_LINE_END = re.compile("\r\n|\r|\n")
# The lines of white space alone at the start of a text (each with its line end)
_WHITE_LINES = re.compile("\\A(?:" + _WHITE + "*(?:\r\n|\r|\n))+")


def _lines_before_header(text: str) -> dict[str, bool]:
    """FileFormat's `white_before_header` (a line of white space alone, not empty, before
    the header) and `crlf_before_header` (a CRLF line of white space alone there)."""
    leading = _WHITE_LINES.match(text)
    lines = "" if leading is None else leading.group()
    return {"white_before_header": bool(_LINE_END.sub("", lines)),
            "crlf_before_header": "\r\n" in lines}


def _blank(head: bytes) -> bool:
    """Nothing but a byte order mark, white space and end-of-file marks: an empty file."""
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if head.startswith(bom):
            head = head[len(bom):]
            if bom != codecs.BOM_UTF8:
                head = head.replace(b"\x00", b"")
            break
    return not head.strip(b" \t\r\n\x0b\x0c" + EOF_MARK)


def _utf16(head: bytes, forced: str | None) -> str:
    """The UTF-16 codec to read the file with: the forced one, or the one its byte order
    mark names; '' for any other file."""
    if forced is not None:
        codec = codec_name(forced)
        return codec if codec.startswith("utf-16") else ""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the mark and drops it
    return ""


_BOMS = {"utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
         "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)}


def _refuse_missing_bom(head: bytes, codec: str, forced: str) -> None:
    """`--encoding utf-16` (utf-32) reads the byte order from the file's mark: a file
    without one is to be read with its byte order named."""
    if codec in _BOMS and not head.startswith(_BOMS[codec]):
        seen = _bare_utf16(head) if codec == "utf-16" else ""
        raise InputError(f"--encoding {forced} needs a byte order mark, and the file starts "
                         f"without one: name its byte order, --encoding {codec}le or "
                         f"{codec}be" + (f" (it looks like {seen})" if seen else ""))


def _bare_utf16(head: bytes) -> str:
    """'utf-16le' / 'utf-16be' when most even (odd) bytes are NUL, as in mostly-ASCII
    UTF-16 text without a byte order mark; '' otherwise."""
    sample = head[:4096]
    half = len(sample) // 2
    for codec, nuls in (("utf-16le", sample[1::2]), ("utf-16be", sample[0::2])):
        if half >= 8 and nuls.count(0) > 0.8 * half:
            return codec
    return ""


def _encoding_conflict(head: bytes, has_bom: bool, forced: str) -> str:
    """Why decoding the file as the forced encoding would garble it ('' when it would not)."""
    if codec_name(forced) in UTF8:
        return ""
    if has_bom:
        return f"the file starts with a UTF-8 byte order mark but --encoding is {forced}"
    if head.isascii() or not _is_utf8(head):
        return ""
    line = next(x for x in head.splitlines() if not x.isascii())
    word = re.search(rb"[\x80-\xff]+", line).group()[:24]
    word = word[: len(word.decode("utf-8", errors="ignore").encode("utf-8"))]
    return (f"the file is valid UTF-8 and --encoding {forced} would garble it "
            f"('{word.decode('utf-8')}' would read as "
            f"'{word.decode(codec_name(forced), errors='replace')}')")


def _refuse_junk(text: str, delimiter: str) -> None:
    """Text that decodes but is no table: control characters, or lines that do not split
    like the header."""
    junk = len(JUNK_CHARS.findall(text.rstrip("\x1a")))  # DOS end-of-file mark is fine
    if junk > JUNK_SHARE * len(text) and junk >= JUNK_MIN:
        raise InputError(f"not a text table ({junk} of {len(text)} characters are "
                         "control characters or undecodable)")
    try:
        # a line of white space alone is a blank line too, as the readers skip it
        records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter)
                   if _filled(r, delimiter)][:SAMPLE_RECORDS]
    except csv.Error:  # a huge field: the reader will judge the rows
        return
    if len(records) < 5 or len(records[0]) < 2:
        return
    fields = len(records[0])
    # A line ending in a delimiter splits like the header: a data line's trailing empty
    # field (DuckDB's reader takes it for none), or the header's own
    matching = sum(len(r) == fields or (len(r) == fields + 1 and r[-1] == "")
                   or (len(r) == fields - 1 and records[0][-1] == "") for r in records[1:])
    if matching * 2 < len(records) - 1:
        name = {"\t": "tab"}.get(delimiter, f"'{delimiter}'")
        raise InputError(f"no consistent delimiter (the header has {fields} fields "
                         f"split by {name}, but only {matching} of {len(records) - 1} sampled "
                         "lines do)")


def _filled(record: list[str], delimiter: str) -> bool:
    """A record that is no blank line: empty, or of white space alone (in a tab-separated
    file, of tabs too), as Spark skips it."""
    return bool(delimiter.join(record).strip(SPARK_TRIMMED))


@functools.cache
def codec_name(enc: str) -> str:
    """The codec's name; an InputError for a name that is no text encoding a file can be
    read in: unknown, a bytes-to-bytes codec (`rot13`, `base64`, `zlib`), or one that
    cannot decode with an error handler (`undefined`, `idna`, `punycode`)."""
    try:
        info = codecs.lookup(enc)
        if not info._is_text_encoding:  # (codecs' own mark of a bytes-to-bytes codec)
            raise LookupError(enc)
        for errors in ("replace", _KEEP_BYTES):
            codecs.getincrementaldecoder(info.name)(errors=errors).decode(b"", final=False)
        return info.name
    except (LookupError, UnicodeError, ValueError):  # ValueError: a NUL in the name
        raise InputError(f"unknown encoding {enc!r}") from None


def _is_utf8(head: bytes) -> bool:
    # A truncated multi-byte char at the sample's end must not fail UTF-8.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return True
    except UnicodeDecodeError:
        return False


def _detect_encoding(head: bytes) -> str:
    """UTF-8 when the sample is; else whichever of GB18030 and UTF-8 leaves fewer bytes
    undecodable: a GBK export with one damaged byte is still GBK (its damaged row is
    rejected), mostly-UTF-8 with damaged bytes stays UTF-8 (DuckDB rejects those rows).
    Latin-1 letters alone between ASCII letters (`Ram\xf3n`) more often than Chinese
    runs of bytes: a Latin-1 export, read as UTF-8 (those rows rejected), never garbled
    as GB18030 (`Ram髇`)."""
    if _is_utf8(head):
        return "utf-8"
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
    # Much UTF-8 per failure is UTF-8 with damage: GB18030, which decodes almost any
    # bytes, must not win by failing on none (张三 stored as 寮犱笁, José as Jos茅).
    failed = utf8.count("\ufffd")
    if _utf8_evidence(utf8) >= UTF8_EVIDENCE * failed:
        return "utf-8"
    if _latin1_evidence(head):
        return "utf-8"
    gb = codecs.getincrementaldecoder("gb18030")(errors="replace").decode(head, final=False)
    return "gb18030" if gb.count("\ufffd") < failed else "utf-8"


# One or two Latin-1 accented letters between ASCII letters (`Ram\xf3n`, `N\xfa\xf1ez`), the
# first letter no GB18030 second byte (no high byte before it): in GB18030 an ASCII
# letter, then a rare hanzi whose second byte is a letter (`Ram髇`, `Mu駉z`) or a hanzi
# alone between ASCII letters
_LATIN1_IN_WORD = re.compile(
    rb"(?<![\x80-\xff])[A-Za-z][\xc0-\xd6\xd8-\xf6\xf8-\xff]{1,2}(?=[a-z])")
# What Chinese text has and Latin-1 text hardly: hanzi in a row (three high bytes or
# more), or one alone between other than letters (`,男,`)
_GB_RUN = re.compile(rb"[\x80-\xff]{3,}"
                     rb"|(?<![\x80-\xffA-Za-z])[\x80-\xff]{2}(?![\x80-\xffA-Za-z])")


def _latin1_evidence(head: bytes) -> bool:
    """Whether Latin-1 letters alone inside words outnumber Chinese runs of bytes."""
    return len(_LATIN1_IN_WORD.findall(head)) > len(_GB_RUN.findall(head))


def _latin1_alone(head: bytes) -> bool:
    """A Latin-1 file, read as UTF-8: Latin-1 evidence, and none of its bytes UTF-8 (a
    UTF-8 file with a Latin-1 byte or two would be garbled read as Latin-1)."""
    if head.isascii() or _is_utf8(head) or not _latin1_evidence(head):
        return False
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
    return not re.search("[\x80-\ufffc\ufffe-\U0010ffff]", utf8)


def _non_ascii_sample(path: Path, head: bytes) -> bytes:
    """The bytes to judge the encoding by: the head, unless it is all ASCII; then the
    sample from the line holding the file's first non-ASCII byte (a GB18030 export whose
    first rows are ASCII is not UTF-8 because its head decodes as such)."""
    if not head.isascii():
        return head
    with open(path, "rb") as fh:
        offset = 0
        for chunk in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            if not chunk.isascii():
                at = offset + _NON_ASCII.search(chunk).start()
                start = max(0, at - 4096)
                fh.seek(start)
                window = fh.read(SAMPLE_BYTES)
                return window[window.rfind(b"\n", 0, at - start) + 1:]
            offset += len(chunk)
    return head


_NON_ASCII = re.compile(rb"[\x80-\xff]")
_WIDE = re.compile("[\u0800-\ufffc\ufffe-\U0010ffff]")  # 3- and 4-byte, not U+FFFD
_WORD = re.compile(r"[^\W\d_]{2,}")  # letters in a row
_ASCII_LETTER = re.compile("[A-Za-z]")
_LATIN1_LETTER = re.compile("[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff]")  # é ñ ü ß …
_OTHER_TWO_BYTE = re.compile("[\x80-\u00bf\u00d7\u00f7\u0100-\u07ff]")
UTF8_EVIDENCE = 10  # evidence per failure that makes a sample UTF-8 with damage


def _utf8_evidence(text: str) -> int:
    """How much of a sample decoded as UTF-8 looks like text: its 3- and 4-byte characters
    (GBK bytes hardly ever form them: its pairs that pass as UTF-8 come out below U+0800,
    太原 as two combining marks), the distinct 2-byte letters inside words (José,
    Ангелина; a GBK word that passes, 眉山 as `üɽ`, gives two however often repeated),
    and each accented Latin-1 letter (é ñ ü ß) of a word that also holds an ASCII letter
    and no other 2-byte character (José, Núñez), counted as often as it occurs: a Spanish
    or German file has too few distinct accented letters to outweigh a damaged byte. A
    GBK hanzi next to an ASCII letter passes as a letter of another block (`Zara女装` as
    `ZaraŮװ`, `Nike女鞋` as `NikeŮЬ`), which no such word counts however often repeated."""
    words = _WORD.findall(text)
    letters = {c for word in words for c in word if "\x80" <= c < "\u0800"}
    mixed = sum(len(_LATIN1_LETTER.findall(word)) for word in words
                if _ASCII_LETTER.search(word) and not _OTHER_TWO_BYTE.search(word))
    return len(_WIDE.findall(text)) + len(letters) + mixed


def csv_header(path: Path, delimiter: str, encoding: str = "utf-8-sig") -> list[str]:
    """The fields of a CSV file's header record, RFC 4180 quoting (spaces after a
    delimiter skipped: `"id", "name"` is id and name, as DuckDB reads it).

    A header whose quote is left open (`phone,"name,city`) fails its file on both
    engines, whatever the file's size: DuckDB read the lines after it into a name (or
    gave up past csv's field limit in a large file), Spark ends it at the line's end.
    Left open: the quote runs to the end of the file, or a later quote that ends no
    field closes it; a name with a line break inside quotes that close is a name, also
    where spaces follow its closing quote (`"phone" ,"home\ncity"`, as DuckDB reads it)."""
    def first_record(strict: bool) -> tuple[list[str], str]:
        """The header record and its text as written (the lines it was read from)."""
        lines: list[str] = []

        def kept(fh):
            for line in fh:
                lines.append(line)
                yield line

        with open(path, encoding=encoding, errors="replace", newline="") as fh:
            # blank lines before it (also of white space alone) are skipped, as the
            # readers skip them
            for record in csv.reader(kept(fh), delimiter=delimiter, strict=strict,
                                     skipinitialspace=True):
                if _filled(record, delimiter):
                    return record, "".join(lines)
                lines.clear()
        return [], ""

    try:
        return first_record(strict=True)[0]
    except csv.Error as exc:  # read again leniently: `"id" ,name` is a header
        open_to_the_end = "unexpected end of data" in str(exc)
    try:
        header, written = first_record(strict=False)
    except csv.Error:  # a field over csv's limit
        open_to_the_end = True
    if open_to_the_end or (any("\n" in f or "\r" in f for f in header)
                           and not _spaced_record(delimiter).fullmatch(written)):
        raise InputError(UNREADABLE_HEADER)
    return header


@functools.cache
def _spaced_record(delimiter: str) -> re.Pattern:
    """A record of RFC 4180 fields where spaces may stand before a field and after a
    quoted field's closing quote (`"phone" ,"home\ncity"`): its quotes all close where a
    field ends, so a line break inside them is a name's."""
    d = re.escape(delimiter)
    field = rf' *(?:"[^"]*(?:""[^"]*)*" *|[^ "{d}\r\n][^{d}\r\n]*|)'
    return re.compile(rf'{field}(?:{d}{field})*(?:\r\n|\n|\r)?')


UNREADABLE_HEADER = ("its header line cannot be read: a quote left open (the rest of the "
                     "file reads as one field) or a header field over "
                     f"{csv.field_size_limit():,} characters")


_QUOTED_FIELD = re.compile(r'"(?:[^"]|"")*"')


def _detect_delimiter(header: str) -> str:
    """The delimiter the header line holds most of, outside quoted names (a quoted
    `"landing page, utm";phone` is `;`-separated)."""
    header = _QUOTED_FIELD.sub("", header)
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def transcode_to_utf8(path: Path, encoding: str, *, newlines: bool = False,
                      eof_mark: bool = False, delimiter: str = ",",
                      blank_leading: bool = False) -> tuple[Path, int]:
    """Streams a file into a temporary UTF-8 copy DuckDB can read: decoded from `encoding`
    and, with `newlines`, every line ending (CRLF, or a lone CR) written as LF — DuckDB's
    sniffer gives up on a file whose line endings are mixed — but for those inside a
    quoted value (`delimiter` separates fields), which are text of the value.

    An undecodable byte is written as it was (not as U+FFFD): the copy is then not valid
    UTF-8 there, and DuckDB rejects that row as `invalid_encoding`, as in a UTF-8 file —
    nothing is loaded altered. With `blank_leading`, lines of white space alone before
    the header are written empty (their line ends kept: the lines keep their numbers).
    Returns (temp path, number of such bytes).
    """
    decoder = codecs.getincrementaldecoder(codec_name(encoding))(errors=_KEEP_BYTES)
    fd, tmp = temp_copy(".csv")
    try:
        return _transcode_into(fd, Path(tmp), path, decoder, newlines=newlines,
                               eof_mark=eof_mark, delimiter=delimiter,
                               blank_leading=blank_leading)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (UnicodeError, LookupError)):  # a codec gave up on the bytes
            raise InputError(f"cannot be read as {encoding}: {exc}") from None
        raise


def _transcode_into(fd: int, tmp: Path, path: Path, decoder: codecs.IncrementalDecoder, *,
                    newlines: bool, eof_mark: bool, delimiter: str,
                    blank_leading: bool) -> tuple[Path, int]:
    replaced = 0
    last = held = ""  # the characters written last; what may go on in the next chunk
    ends = LineEnds(delimiter)
    with open(path, "rb") as src, os.fdopen(fd, "w", encoding="utf-8", newline="",
                                            errors="surrogateescape") as dst:
        for chunk in iter(lambda: src.read(4 * 1024 * 1024), b""):
            text = decoder.decode(chunk)
            if blank_leading:
                text, blank_leading = _WHITE_LINES.sub(
                    lambda m: "".join(_LINE_END.findall(m.group())), text), False
            replaced += len(_ESCAPED.findall(text))
            if newlines:
                text, last, held = _lf(last + held + text, ends, start=len(last))
            dst.write(text)
        text = decoder.decode(b"", final=True)  # a cut last character is counted here
        replaced += len(_ESCAPED.findall(text))
        dst.write(_lf(last + held + text, ends, final=True, start=len(last))[0]
                  if newlines else text)
    if eof_mark and ends_with_eof_mark(tmp):
        os.truncate(tmp, os.path.getsize(tmp) - len(EOF_MARK))
    return tmp, replaced


def _keep_bytes(exc: UnicodeDecodeError) -> tuple[str, int]:
    """Decode error handler: bytes 0x80-0xFF as the surrogates `surrogateescape` writes
    back as those bytes; a lower one (half a UTF-16 unit: a file cut by one byte) as byte
    0xFF, which is no UTF-8 either: written as itself (ASCII) or as U+FFFD (valid UTF-8)
    its row loaded (`Bob\ufffd`) where it must be rejected."""
    bad = exc.object[exc.start:exc.end]
    return "".join(chr(0xDC00 + (b if b >= 0x80 else 0xFF)) for b in bad), exc.end


_KEEP_BYTES = "leadctl_keep_bytes"
codecs.register_error(_KEEP_BYTES, _keep_bytes)
_ESCAPED = re.compile("[\udc80-\udcff]")  # (a U+FFFD of the file is a character of it)


class LineEnds:
    """How the copy with LF line endings tells a quoted value (opened at a field's start,
    one space before it allowed, as DuckDB reads it; kept as written) from a line ending.
    `quotes`: a quoted value, or a quote opened and not closed in the text; `tokens`:
    those or a line ending."""

    def __init__(self, delimiter: str):
        ends = f"{re.escape(delimiter)}\r\n"
        # A quote, then what was before it (a quote first: the search skips to quotes fast)
        start = f'"(?:(?<![^{ends}]")|(?<=[{ends}] ")|(?<=^ "))'
        self.quotes = re.compile(f'({start}(?:[^"]++|"")*+")|({start})')
        self.tokens = re.compile(f'(?P<quoted>{start}(?:[^"]++|"")*+")|(?P<open>{start})'
                                 '|\r\n|\r')
        # written characters before a chunk say only whether a field starts after them
        self.not_an_end = re.compile(f"[^{ends} ]")


def _lf(text: str, ends: LineEnds, final: bool = False,
        start: int = 0) -> tuple[str, str, str]:
    """(`text[start:]` with its line endings outside quoted values as LF, the characters
    written last (two: a delimiter and a space), the tail held back for the next chunk:
    from a quoted value that may go on there, or a last CR whose LF may). `text[:start]`
    was written already: it says whether a quote opens a field. A quote still open after
    MAX_OPEN_QUOTE characters, or at the end, was no quote.

    Split by the quoted values (in C); a quote left open, rare, takes the token loop."""
    pieces = ends.quotes.split(ends.not_an_end.sub("x", text[:start]) + text[start:])
    opened = len(pieces) // 3 - pieces[2::3].count(None)
    # A quote opened in the last piece but one, not closed before the end: the chunk cut
    # a quoted value, which goes on in the next one (unless it is over-long)
    tail_open = opened == 1 and pieces[-2] is not None and not final \
        and len(pieces[-2]) + len(pieces[-1]) < MAX_OPEN_QUOTE
    if opened and not tail_open:
        return _lf_tokens(text, ends.tokens, final, start)
    held = ""
    if tail_open:
        held = pieces[-2] + pieces[-1]
        del pieces[-3:]
    elif not final and len(pieces) > 1 and pieces[-1] == "":
        held = pieces[-3]  # a quoted value ends the text: `"a""` may go on as `"a"""b"`
        del pieces[-3:-1]
    elif not final and pieces[-1].endswith("\r"):
        held, pieces[-1] = "\r", pieces[-1][:-1]
    pieces[0] = pieces[0][start:]
    pieces[0::3] = [p.replace("\r\n", "\n").replace("\r", "\n") for p in pieces[0::3]]
    kept = text[:len(text) - len(held)]
    return "".join(filter(None, pieces)), kept[-2:], held


def _lf_tokens(text: str, tokens: re.Pattern, final: bool,
               start: int) -> tuple[str, str, str]:
    """_lf, token by token."""
    out: list[str] = []
    done = start
    for m in tokens.finditer(text, start):
        last = m.end() == len(text) and not final
        if m["quoted"] is not None:
            if last:  # `"a""` may go on as `"a"""b"` in the next chunk
                break
            continue  # kept as written
        if m["open"] is not None:
            if not final and len(text) - m.start() < MAX_OPEN_QUOTE:
                break  # its closing quote may be in the next chunk
            continue  # never closed: no quote
        if last and m[0] == "\r":
            break
        out.append(text[done:m.start()] + "\n")
        done = m.end()
    else:
        return "".join(out) + text[done:], text[-2:], ""
    return "".join(out) + text[done:m.start()], text[max(m.start() - 2, 0):m.start()], \
        text[m.start():]


MAX_OPEN_QUOTE = 8 * 1024 * 1024  # as the reader's longest line: beyond, no quoted value
