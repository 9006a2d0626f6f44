"""Masking of personal data (phone, email, name, ID card, WeChat, device id).

Pure functions, stdlib only: used by views (terminal, JSON), by logs
(`mask_text`) and, as SQL builders (`mask_sql`), by exports that must stay
set-based. The Python and SQL forms give the same result (tested).

    138****5678    z***@qq.com    张*    1101**********1234    zh****88
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

STAR = "*"
PII_KINDS = ("phone", "email", "name", "id_card", "wechat", "device_id")


# Full-width digits (`１３８…`, as a Chinese input method types them) count as digits, as
# identity normalisation reads them (leadctl/identity/normalize.py FULL_WIDTH_FROM).
FULL_WIDTH_DIGITS = "０１２３４５６７８９"
_TO_ASCII_DIGITS = str.maketrans(FULL_WIDTH_DIGITS, "0123456789")


def _digits(value: str) -> str:
    return "".join(ch for ch in value.translate(_TO_ASCII_DIGITS) if "0" <= ch <= "9")


# A CN number's country code as its digits give it, the last two with a trunk 0, and a
# trunk 0 alone: dropped from 11 digits more (Python and SQL masks alike), so every
# spelling identity normalisation reads as one mobile (`cn_prefix`) shows one mask.
CN_PREFIXES = ("86", "0086", "860", "00860", "0")


def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits of 11 or more (a CN country code, +86 or 0086,
    is dropped, with a trunk 0 after it, and so is a trunk 0 alone before 11 digits;
    full-width digits count as digits), the first and last 2 of 7 to 10 (a landline or
    short number: at least 3 hidden), the last 2 of fewer. Fewer than 3 digits
    (`phone:abc`): masked like any other text, never a lone `*`."""
    if value is None:
        return None
    digits = _digits(value)
    for prefix in CN_PREFIXES:
        if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
            digits = digits[len(prefix):]
            break
    if len(digits) < 3:
        return mask_generic(value)
    if len(digits) < 7:
        return STAR * max(len(digits) - 2, 1) + digits[-2:]
    if len(digits) < 11:
        return digits[:2] + STAR * (len(digits) - 4) + digits[-2:]
    return digits[:3] + STAR * max(len(digits) - 7, 4) + digits[-4:]


def mask_email(value: str | None) -> str | None:
    """First character of the mailbox, then `***@domain`."""
    if value is None:
        return None
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return mask_generic(value)
    return (local[:1] or STAR) + STAR * 3 + "@" + domain


def mask_name(value: str | None) -> str | None:
    """First character kept, every other character starred: 张* 张** J*******; a
    one-character name (`张`: first character kept would show it all) is `****`, like any
    value too short to keep its shape; an empty name stays empty (not a lone `*`)."""
    if value is None:
        return None
    name = value.strip()
    if len(name) == 1:
        return STAR * 4
    return name[:1] + STAR * (len(name) - 1) if name else ""


def mask_id_card(value: str | None) -> str | None:
    """First 4 and last 4 characters kept: 1101**********1234."""
    if value is None:
        return None
    text = value.strip()
    if len(text) < 9:
        return mask_generic(text)
    return text[:4] + STAR * (len(text) - 8) + text[-4:]


def mask_generic(value: str | None) -> str | None:
    """WeChat / device ids / anything else: first 2 and last 2 kept (1 and 1 if short)."""
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 8:
        return text[:2] + STAR * 4 + text[-2:]
    if len(text) >= 3:
        return text[:1] + STAR * 4 + text[-1:]
    return STAR * 4


_MASKERS = {
    "phone": mask_phone, "email": mask_email, "name": mask_name, "id_card": mask_id_card,
    "wechat": mask_generic, "device_id": mask_generic,
}


def mask(kind: str, value: str | None) -> str | None:
    """Mask a value of a PII kind; other kinds pass through unchanged."""
    masker = _MASKERS.get(kind)
    return masker(value) if masker and value is not None else value


def mask_values(kind: str, values: list[str] | None) -> list[str] | None:
    return None if values is None else [mask(kind, v) for v in values]


# -- free text (log lines, messages) -------------------------------------------------

# A local part starts where its run of characters starts (the leftmost match would anyway):
# without the look-behind, a long run with no `@` is rescanned from each of its characters.
_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_D = "[0-9０-９]"
# An 18-character ID card, its digits (and X) ASCII or full-width.
_ID_CARD_RE = re.compile(
    f"(?<!{_D})[1-9１-９]{_D}{{16}}[0-9Xx０-９Ｘｘ](?![0-9A-Za-z０-９Ａ-Ｚａ-ｚ])")
# A CN mobile: 1, 3-9, nine digits more, ASCII or full-width, maybe after +86 / 0086 (and
# a trunk 0) or a trunk 0 alone (`0138-1234-5678`; then it starts a group of 4 or more:
# `013 812 345 678` is a number grouped by thousands). Its digits may be grouped by single
# separators identity normalisation drops too (space, dash; their full-width forms; a
# no-break space), any mix, the first group 2 digits or more and every other 3 or more
# (`13 812 345 678`, `1381 2345 678`, `138 12345678`): groups of 1 or 2 are how dates,
# times and IP addresses split. Dots split only 3-4-4, both groups (`139.5555.0006`): one
# dot is a decimal (`139.12345678`, `139.1234 5678`), `13.812.345.678` an amount or an IP
# address. Not part of a decimal number (`13912345678.5`), nor the first 11 digits of a
# number grouped by thousands (`13 812 345 678 901`).
_SEP = "[ \\-\u00a0\u3000－]"
_PHONE_RE = re.compile(
    f"(?<!{_D})(?<![.．]{_D})"
    f"(?:(?:[+＋]?[8８][6６]|[0０]{{2}}[8８][6６])[ .\\-\u00a0\u3000．－]?[0０]?"
    f"|[0０](?={_D}{{3}}))?"
    f"(?!{_D}{{2}}(?:{_SEP}{_D}{{3}}){{4}}(?!{_D}))"
    f"[1１][3-9３-９](?:{_D}[.．]{_D}{{4}}[.．]{_D}{{4}}"
    f"|(?:(?:{_SEP}(?={_D}{{3}}))?{_D}){{9}})(?![.．]?{_D})")


# An ID card written in groups, as people space it for reading (`110101 19900307 123X`,
# `110101 1990 0307 123X`; identity normalisation drops the spaces: the same card) or
# dash it (else its middle read as a dashed mobile, `199****7123`, and half of it shown).
# Groups of 4 or more (shorter ones are how dates and amounts split), single separators.
# A run of groups is found whole, then searched for the cards it holds: one with a year
# before it or a phone after it (`2024 110101 19900307 123X`) is masked too.
_X = "[0-9Xx０-９Ｘｘ]"
_SPACE = "[ \\-\u00a0\u3000－]"
_ALNUM = "0-9A-Za-z０-９Ａ-Ｚａ-ｚ"
_GROUP_RUN_RE = re.compile(f"(?<![{_ALNUM}]){_X}+(?:{_SPACE}{_X}+)+(?![{_ALNUM}])")
# The ID card's full-width digits and X as ASCII, as a phone's: the mask shows ASCII.
_TO_ASCII_ID_CARD = str.maketrans(FULL_WIDTH_DIGITS + "Ｘｘ", "0123456789Xx")


def _mask_id_card_text(value: str) -> str | None:
    return mask_id_card(value.translate(_TO_ASCII_ID_CARD))


def _mask_grouped_id_cards(run: str) -> str:
    """The ID cards among a run's groups: consecutive groups of 4 or more characters that
    make 18 and an ID card (X only last), each masked whole; the rest as it is. Where two
    such spans overlap (`2024 110101 19900307 123X`), one whose characters 7-14 are a
    birth date is the card."""
    parts = re.split(f"({_SPACE})", run)  # group, separator, group, ...
    groups = parts[0::2]
    spans = []  # (not a birth date, first group, last group + 1, the card)
    for i in range(len(groups)):
        size, j = 0, i
        while j < len(groups) and len(groups[j]) >= 4 and size < 18:
            size, j = size + len(groups[j]), j + 1
        card = "".join(groups[i:j]).translate(_TO_ASCII_ID_CARD)
        if j - i >= 2 and size == 18 and _ID_CARD_RE.fullmatch(card):
            spans.append((not _BIRTH_DATE_RE.match(card[6:14]), i, j, card))
    masked: dict[int, tuple[int, str]] = {}  # first group → (last + 1, mask)
    taken: set[int] = set()
    for _, i, j, card in sorted(spans):
        if taken.isdisjoint(range(i, j)):
            taken.update(range(i, j))
            masked[i] = (j, mask_id_card(card))
    out, i = [], 0
    while i < len(groups):
        j, text = masked.get(i, (i + 1, groups[i]))
        out.append(text)
        if j < len(groups):
            out.append(parts[2 * j - 1])  # the separator before the next group
        i = j
    return "".join(out)


_BIRTH_DATE_RE = re.compile("(18|19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])")


# What `mask_text` masks, in order: e-mails, 18-digit ID cards (whole, then spaced), CN
# mobiles.
_TEXT_MASKS = ((_EMAIL_RE, mask_email), (_ID_CARD_RE, _mask_id_card_text),
               (_GROUP_RUN_RE, _mask_grouped_id_cards), (_PHONE_RE, mask_phone))


def mask_text(text: str | None) -> str | None:
    """Masks e-mails, 18-digit ID cards and CN mobiles found anywhere in `text`."""
    if not text:
        return text
    for pattern, masker in _TEXT_MASKS:
        text = pattern.sub(lambda m, masker=masker: masker(m.group()), text)
    return text


# 10 or more digits, maybe split by spaces, dashes or dots: a phone, an ID card, a number
# a spreadsheet turned into 1.3912345671E+10 — not a lead id of ordinary length.
_LONG_NUMBER_RE = re.compile(r"\d(?:[\s.\-]?\d){9,}[\dXx]?")


def mask_query(text: str) -> str:
    """A query that named no identifier kind, as messages echo it: what may still be
    personal data (an e-mail, a long number in any spelling) masked."""
    return mask_text(_LONG_NUMBER_RE.sub(lambda m: mask_generic(m.group()), text))


def display_width(text: str) -> int:
    """Terminal cells: CJK and other wide characters take two."""
    return sum(_cell_width(ch) for ch in text)


def _cell_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _cell_offsets(text: str) -> list[int]:
    """The terminal column before each character of `text`, and after the last."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + _cell_width(ch))
    return offsets


_CARET_LINE_RE = re.compile(r"( *)(\^+)\s*")


def mask_lines(text: str) -> str:
    """`mask_text` line by line, moving a `^^^` line under its masked line: a masked
    e-mail is shorter, and the marker must still point at the same part (the whole
    masked value when it pointed into one)."""
    lines = text.split("\n")
    masked = [mask_text(line) for line in lines]
    for i in range(1, len(lines)):
        caret = _CARET_LINE_RE.fullmatch(lines[i])
        if caret and masked[i - 1] != lines[i - 1]:
            masked[i] = _moved_caret(lines[i - 1], caret.end(1), caret.end(2))
    return "\n".join(masked)


def _moved_caret(line: str, start: int, end: int) -> str:
    """The caret line for columns [start, end) of `line`, once the line is masked."""
    masked, starts, ends = line, list(range(len(line) + 1)), list(range(len(line) + 1))
    for pattern, masker in _TEXT_MASKS:
        masked, step_starts, step_ends = _sub_mapped(pattern, masker, masked)
        starts = [step_starts[k] for k in starts]
        ends = [step_ends[k] for k in ends]
    before, after = _cell_offsets(line), _cell_offsets(masked)

    def moved(column: int, boundaries: list[int]) -> int:
        if column >= before[-1]:  # past the line's end: as far past the masked line's
            return after[-1] + column - before[-1]
        return after[boundaries[next(k for k, cells in enumerate(before) if cells >= column)]]

    first, last = moved(start, starts), moved(end, ends)
    return " " * first + "^" * max(last - first, 1)


def _sub_mapped(pattern: re.Pattern, masker, text: str) -> tuple[str, list[int], list[int]]:
    """`pattern.sub` with masker, and where each boundary between characters of `text`
    lands: as a start and as an end (inside a replaced value: its start, its end)."""
    starts, ends, out = [0] * (len(text) + 1), [0] * (len(text) + 1), []
    done = last = 0  # characters written; characters of `text` consumed
    for m in pattern.finditer(text):
        for k in range(last, m.start() + 1):
            starts[k] = ends[k] = done + k - last
        out.append(text[last:m.start()])
        done += m.start() - last
        value = masker(m.group())
        for k in range(m.start() + 1, m.end()):
            starts[k], ends[k] = done, done + len(value)
        out.append(value)
        done += len(value)
        last = m.end()
    for k in range(last, len(text) + 1):
        starts[k] = ends[k] = done + k - last
    out.append(text[last:])
    return "".join(out), starts, ends


class MessageFilter(logging.Filter):
    """A logging filter (install it on handlers) that rewrites every record's message."""

    def __init__(self, rewrite) -> None:
        super().__init__()
        self.rewrite = rewrite

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        rewritten = self.rewrite(message)
        if rewritten != message:
            record.msg, record.args = rewritten, None
        return True


class MaskingFilter(MessageFilter):
    """Masks PII in every record, so logs never contain raw phone numbers, e-mails or ID
    cards."""

    def __init__(self) -> None:
        super().__init__(mask_lines)


# -- SQL builders (same results as the Python functions) -------------------------------

# What Python's str.strip() strips (the maskers above strip so): DuckDB's one-argument
# trim() strips spaces only, so a name "李\t" kept two characters and showed whole.
PYTHON_WHITE_SPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
                      + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000")


def _stripped_sql(expr: str) -> str:
    return f"trim({expr}, '{PYTHON_WHITE_SPACE}')"


def _stars(count_sql: str) -> str:
    return f"repeat('{STAR}', CAST({count_sql} AS INTEGER))"


def mask_sql(kind: str, expr: str) -> str:
    """SQL expression masking `expr` like `mask(kind, ...)` does; NULL stays NULL."""
    if kind == "phone":
        # full-width digits kept, then made ASCII (translate over the few digits left)
        digits = (f"translate(regexp_replace({expr}, '[^0-9{FULL_WIDTH_DIGITS}]', '', 'g'), "
                  f"'{FULL_WIDTH_DIGITS}', '0123456789')")
        local = ("(CASE " + " ".join(
            f"WHEN length({digits}) = {11 + len(prefix)} AND starts_with({digits}, "
            f"'{prefix}') THEN substr({digits}, {len(prefix) + 1})"
            for prefix in CN_PREFIXES) + f" ELSE {digits} END)")
        return (f"(CASE WHEN {expr} IS NULL THEN NULL "
                f"WHEN length({local}) < 3 THEN {_generic_sql(_stripped_sql(expr))} "
                f"WHEN length({local}) < 7 THEN {_stars(f'greatest(length({local}) - 2, 1)')} "
                f"|| right({local}, 2) "
                f"WHEN length({local}) < 11 THEN left({local}, 2) "
                f"|| {_stars(f'length({local}) - 4')} || right({local}, 2) "
                f"ELSE left({local}, 3) || {_stars(f'greatest(length({local}) - 7, 4)')} "
                f"|| right({local}, 4) END)")
    text = _stripped_sql(expr)
    short = _generic_sql(text)
    if kind == "email":
        at = f"strpos(reverse({text}), '@')"  # from the right, like rpartition
        local = f"left({text}, length({text}) - {at})"
        domain = f"right({text}, {at} - 1)"
        return (f"(CASE WHEN {expr} IS NULL THEN NULL WHEN {at} = 0 THEN {short} "
                f"ELSE coalesce(nullif(left({local}, 1), ''), '{STAR}') || '***@' || {domain} END)")
    if kind == "name":
        return (f"(CASE WHEN {expr} IS NULL THEN NULL WHEN {text} = '' THEN '' "
                f"WHEN length({text}) = 1 THEN '****' "
                f"ELSE left({text}, 1) || {_stars(f'length({text}) - 1')} END)")
    if kind == "id_card":
        return (f"(CASE WHEN {expr} IS NULL THEN NULL WHEN length({text}) < 9 THEN {short} "
                f"ELSE left({text}, 4) || {_stars(f'length({text}) - 8')} || right({text}, 4) END)")
    if kind in ("wechat", "device_id"):
        return f"(CASE WHEN {expr} IS NULL THEN NULL ELSE {short} END)"
    return expr


def _generic_sql(text: str) -> str:
    return (f"(CASE WHEN length({text}) >= 8 THEN left({text}, 2) || '****' || right({text}, 2) "
            f"WHEN length({text}) >= 3 THEN left({text}, 1) || '****' || right({text}, 1) "
            f"ELSE '****' END)")


def shown(kind: str, value, reveal: bool):
    """A personal value (or list of them) as a screen shows it: masked unless `reveal`."""
    if reveal or value is None:
        return value
    if isinstance(value, list):
        return mask_values(kind, value)
    return mask(kind, str(value))


def map_text(value: Any, rewrite) -> Any:
    """`value` with `rewrite` applied to each string in it, in lists and dict values too
    (anything else as it is)."""
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, list):
        return [map_text(v, rewrite) for v in value]
    if isinstance(value, dict):
        return {k: map_text(v, rewrite) for k, v in value.items()}
    return value


def text_shown(value: Any, reveal: bool) -> Any:
    """Free text (an expression, a reason, a utm value, a list of them) as a screen shows
    it: a phone, e-mail or ID card quoted in it masked unless `reveal`."""
    return value if reveal else map_text(value, mask_text)
