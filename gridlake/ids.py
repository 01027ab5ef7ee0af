"""Resident ID numbers (GB 11643-1999) and phone numbers, in plain Python.

Spark Column versions of the same rules live in ``jobs/silver/columns.py``;
these are used by the generator, the CLI and the unit tests.
"""

from __future__ import annotations

import re
import unicodedata
from operator import mul

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID18 = re.compile(r"^[1-9]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[\dX]$")
_ID15 = re.compile(r"^[1-9]\d{5}\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}$")


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("check_digit needs the first 17 characters of an ID number")
    return _CHECK[sum(map(mul, map(int, first17), _WEIGHTS)) % 11]


def upgrade_15_to_18(id15: str) -> str:
    """Convert a legacy 15-digit ID (born 19xx) to its 18-digit form."""
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_digit(first17)


def normalize_id(raw: str | None) -> tuple[str | None, str | None]:
    """Return ``(id18, None)`` for a valid ID, else ``(None, reason_code)``.

    Accepts full-width characters, spaces and a lowercase ``x``; upgrades 15 digits.
    Reason codes: ``ID_MISSING``, ``ID_FORMAT``, ``ID_CHECKSUM``.
    """
    if raw is None:
        return None, "ID_MISSING"
    s = unicodedata.normalize("NFKC", raw).strip().replace(" ", "").upper()
    if not s:
        return None, "ID_MISSING"
    if _ID15.match(s):
        return upgrade_15_to_18(s), None
    if not _ID18.match(s):
        return None, "ID_FORMAT"
    if check_digit(s[:17]) != s[17]:
        return None, "ID_CHECKSUM"
    return s, None


def normalize_phone(raw: str | None) -> str | None:
    """Digits of a Chinese phone number without +86/0086, or None when unusable.

    Accepts spaces, dashes, parentheses and an extension (``转123``, ``ext 12``, dropped); a landline
    written after the country code without its trunk 0 (``+86 755 8888 6666``) gets it back.
    """
    if raw is None:
        return None
    s = re.sub(r"(?i)(转|分机|ext\.?|#)\s*\d+\s*$", "", unicodedata.normalize("NFKC", raw))
    s = re.sub(r"\D", "", s)
    rest = None
    if s.startswith("0086"):
        rest = s[4:]
    elif s.startswith("86") and 11 <= len(s) <= 13:
        rest = s[2:]
    if rest is not None:
        s = "0" + rest if re.fullmatch(r"[2-9]\d{8,10}|10\d{8}", rest) else rest
    if re.fullmatch(r"1[3-9]\d{9}", s):
        return s
    if re.fullmatch(r"0\d{9,11}", s):  # landline with area code
        return s
    return None
