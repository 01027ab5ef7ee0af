"""Resident ID numbers (GB 11643-1999) and phone numbers, in plain Python (a value at a time, and
arrays of values at once: :func:`normalize_ids`, :func:`normalize_phones`).

Spark Column versions of the same rules live in ``jobs/silver/columns.py``;
these are used by the generator, the CLI, person linkage and the unit tests.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from operator import mul

import numpy as np

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


# --- many values at once --------------------------------------------------------------------------
# A value already written the way the standard prints it (18 ASCII digits, the last possibly ``X``; 11 ASCII
# digits of a mobile number) is what most deliveries hold; for it the functions above change nothing but
# decide, and that decision is done below on arrays. Every other value goes through the functions above, so
# each result equals theirs value by value (tests/unit/test_ids_many.py compares them).
_DIGIT_X = ord("X") - ord("0")


def _ascii_matrix(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the values that are ``str`` of ``width`` ASCII characters, and their bytes minus ``'0'``
    as an ``(n, width)`` int array."""
    pos = np.flatnonzero(np.fromiter((isinstance(v, str) and len(v) == width and v.isascii() for v in values),
                                     dtype=bool, count=len(values)))
    if not len(pos):
        return pos, np.empty((0, width), dtype=np.int16)
    raw = np.frombuffer("".join(values[pos].tolist()).encode("ascii"), dtype=np.uint8)
    return pos, raw.reshape(len(pos), width).astype(np.int16) - ord("0")


def normalize_ids(values: Sequence[str | None] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`normalize_id` of every value: ``(id18, reason)`` as two object arrays (None where none)."""
    arr = np.asarray(values, dtype=object)
    ids = np.full(len(arr), None, dtype=object)
    reasons = np.full(len(arr), None, dtype=object)
    pos, d = _ascii_matrix(arr, 18)
    clean = ((d[:, :17] >= 0) & (d[:, :17] <= 9)).all(axis=1) & (((d[:, 17] >= 0) & (d[:, 17] <= 9))
                                                                | (d[:, 17] == _DIGIT_X))
    pos, d = pos[clean], d[clean]
    month, day = d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    century = d[:, 6] * 10 + d[:, 7]
    formed = (d[:, 0] >= 1) & ((century == 19) | (century == 20)) & (month >= 1) & (month <= 12) \
        & (day >= 1) & (day <= 31)
    check = np.frombuffer(_CHECK.encode("ascii"), dtype=np.uint8)[(d[:, :17] @ np.array(_WEIGHTS)) % 11]
    sums_ok = check.astype(np.int16) - ord("0") == d[:, 17]
    good = formed & sums_ok
    ids[pos[good]] = arr[pos[good]]
    reasons[pos[formed & ~sums_ok]] = "ID_CHECKSUM"
    reasons[pos[~formed]] = "ID_FORMAT"
    rest = np.ones(len(arr), dtype=bool)
    rest[pos] = False
    for i in np.flatnonzero(rest).tolist():
        ids[i], reasons[i] = normalize_id(arr[i])
    return ids, reasons


def normalize_phones(values: Sequence[str | None] | np.ndarray) -> np.ndarray:
    """:func:`normalize_phone` of every value (object array, None where unusable)."""
    arr = np.asarray(values, dtype=object)
    out = np.full(len(arr), None, dtype=object)
    pos, d = _ascii_matrix(arr, 11)
    mobile = ((d >= 0) & (d <= 9)).all(axis=1) & (d[:, 0] == 1) & (d[:, 1] >= 3)
    out[pos[mobile]] = arr[pos[mobile]]
    rest = np.ones(len(arr), dtype=bool)
    rest[pos[mobile]] = False
    for i in np.flatnonzero(rest).tolist():
        out[i] = normalize_phone(arr[i])
    return out
