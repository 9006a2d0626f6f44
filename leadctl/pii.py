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

STAR = "*"
PII_KINDS = ("phone", "email", "name", "id_card", "wechat", "device_id")


def _digits(value: str) -> str:
    return "".join(ch for ch in value if "0" <= ch <= "9")


def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits of 11 or more (a CN country code, +86, is
    dropped), the first and last 2 of 7 to 10 (a landline or short number: at least 3
    hidden), the last 2 of fewer. Fewer than 3 digits (`phone:abc`): masked like any
    other text, never a lone `*`."""
    if value is None:
        return None
    digits = _digits(value)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
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
    """First character kept, every other character starred: 张* 张** J*******; an
    empty name stays empty (not a lone `*`)."""
    if value is None:
        return None
    name = value.strip()
    return name[:1] + STAR * max(len(name) - 1, 1) if name else ""


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

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ID_CARD_RE = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<![0-9])(?:\+?86[ -]?|0086[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}"
                       r"(?![0-9])")


def mask_text(text: str) -> str:
    """Masks e-mails, 18-digit ID cards and CN mobiles found anywhere in `text`."""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group()), text)
    text = _ID_CARD_RE.sub(lambda m: mask_id_card(m.group()), text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group()), text)


# 10 or more digits, maybe split by spaces, dashes or dots: a phone, an ID card, a number
# a spreadsheet turned into 1.3912345671E+10 — not a lead id of ordinary length.
_LONG_NUMBER_RE = re.compile(r"\d(?:[\s.\-]?\d){9,}[\dXx]?")


def mask_query(text: str) -> str:
    """A query that named no identifier kind, as messages echo it: what may still be
    personal data (an e-mail, a long number in any spelling) masked."""
    return mask_text(_LONG_NUMBER_RE.sub(lambda m: mask_generic(m.group()), text))


def display_width(text: str) -> int:
    """Terminal cells: CJK and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


_CARET_LINE_RE = re.compile(r"( *)(\^+) *")


def mask_lines(text: str) -> str:
    """`mask_text` line by line, moving a `^^^` line under its masked line: a masked
    e-mail is shorter, and the marker must still point at the same part."""
    lines = text.split("\n")
    masked = [mask_text(line) for line in lines]
    for i in range(1, len(lines)):
        caret = _CARET_LINE_RE.fullmatch(lines[i])
        if caret and masked[i - 1] != lines[i - 1]:
            start, end = (_masked_column(lines[i - 1], caret.end(n)) for n in (1, 2))
            masked[i] = " " * start + "^" * max(end - start, 1)
    return "\n".join(masked)


def _masked_column(line: str, column: int) -> int:
    """Where terminal column `column` of `line` falls once the line is masked."""
    chars = 0
    while chars < len(line) and display_width(line[:chars]) < column:
        chars += 1
    return display_width(mask_text(line[:chars])) + max(column - display_width(line), 0)


class MaskingFilter(logging.Filter):
    """A logging filter that masks PII in every record (install it on handlers), so logs
    never contain raw phone numbers, e-mails or ID cards."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_lines(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


# -- SQL builders (same results as the Python functions) -------------------------------

def _stars(count_sql: str) -> str:
    return f"repeat('{STAR}', CAST({count_sql} AS INTEGER))"


def mask_sql(kind: str, expr: str) -> str:
    """SQL expression masking `expr` like `mask(kind, ...)` does; NULL stays NULL."""
    if kind == "phone":
        digits = f"regexp_replace({expr}, '[^0-9]', '', 'g')"
        local = (f"(CASE WHEN length({digits}) = 13 AND starts_with({digits}, '86') "
                 f"THEN substr({digits}, 3) ELSE {digits} END)")
        return (f"(CASE WHEN {expr} IS NULL THEN NULL "
                f"WHEN length({local}) < 3 THEN {_generic_sql(f'trim({expr})')} "
                f"WHEN length({local}) < 7 THEN {_stars(f'greatest(length({local}) - 2, 1)')} "
                f"|| right({local}, 2) "
                f"WHEN length({local}) < 11 THEN left({local}, 2) "
                f"|| {_stars(f'length({local}) - 4')} || right({local}, 2) "
                f"ELSE left({local}, 3) || {_stars(f'greatest(length({local}) - 7, 4)')} "
                f"|| right({local}, 4) END)")
    text = f"trim({expr})"
    short = _generic_sql(text)
    if kind == "email":
        at = f"strpos(reverse({text}), '@')"  # from the right, like rpartition
        local = f"left({text}, length({text}) - {at})"
        domain = f"right({text}, {at} - 1)"
        return (f"(CASE WHEN {expr} IS NULL THEN NULL WHEN {at} = 0 THEN {short} "
                f"ELSE coalesce(nullif(left({local}, 1), ''), '{STAR}') || '***@' || {domain} END)")
    if kind == "name":
        return (f"(CASE WHEN {expr} IS NULL THEN NULL WHEN {text} = '' THEN '' "
                f"ELSE left({text}, 1) || "
                f"{_stars(f'greatest(length({text}) - 1, 1)')} END)")
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
