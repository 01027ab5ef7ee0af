"""Safe spreadsheet cells and file names for every file gridlake hands to a person.

OWASP's CSV-injection guidance, applied to both XLSX and CSV: a delivered text that a
spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return, or with their full-width forms ``＝＋－＠``) is prefixed with a single
quote, so Excel, WPS and LibreOffice show it as text and never evaluate it. Control
characters (which openpyxl refuses, and which break CSV rows) are removed. In XLSX the
cell is also written as a string cell (:func:`set_text_cell`), so even a text openpyxl
would take for a formula is stored as ``t="s"``/inline text.

File names: :func:`safe_stem` turns a grid id or a street name into one path component
that never collides with another value's (a name that had to be changed gets a short hash
of the original) and never exceeds the file system's 255 bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import unicodedata
import zipfile
from typing import Any

# Characters a spreadsheet reads as the start of a formula (OWASP), half- and full-width.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
QUOTE = "'"
# C0 controls except tab/LF/CR, DEL, C1 controls; openpyxl refuses \x00-\x08, \x0b, \x0c, \x0e-\x1f.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Unicode non-characters and lone surrogates (an XML 1.0 document cannot hold them).
_NON_XML = re.compile(r"[\ud800-\udfff\ufffe\uffff]")
_LINE_BREAKS = re.compile(r"\r\n?|\n")

MAX_NAME_BYTES = 255  # ext4, XFS, NTFS (UTF-16 units, stricter in practice: we count UTF-8 bytes)
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\[\]\x00-\x1f\x7f]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)
HASH_CHARS = 8


def clean_text(value: Any) -> str:
    """``value`` as text without control characters (tab kept only inside, line breaks as one space)."""
    if value is None:
        return ""
    text = str(value)
    text = _NON_XML.sub("", text)
    text = _LINE_BREAKS.sub(" ", text)
    return _CONTROL.sub("", text)


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet would read ``text`` as a formula or a DDE payload (OWASP list)."""
    return bool(text) and text.startswith(FORMULA_TRIGGERS)


def safe_text(value: Any) -> str:
    """A delivered text made safe for a spreadsheet cell (XLSX or CSV); ``None`` becomes ``""``.

    Leading tab and CR are triggers in OWASP's list: they are kept and the text quoted, so the
    officer sees that the delivered value started with one.
    """
    if value is None:
        return ""
    raw = str(value)
    if raw.startswith(("\t", "\r")):
        return QUOTE + clean_text(raw)
    text = clean_text(raw)
    return QUOTE + text if is_formula_like(text) else text


def set_text_cell(cell: Any, value: Any) -> None:
    """Write ``value`` into an openpyxl cell as a safe string cell (never a formula), format ``@``."""
    text = safe_text(value)
    cell.value = text
    cell.data_type = "s"  # openpyxl infers 'f' for a text starting with '='; never trust inference
    cell.number_format = "@"


def short_hash(value: Any, chars: int = HASH_CHARS) -> str:
    """First ``chars`` hex digits of SHA-256 of ``str(value)`` (for names, never for secrets)."""
    return hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()[:chars]


def _truncate_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits in ``limit`` bytes (no split character)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def safe_stem(value: Any, default: str, reserve_bytes: int = 16) -> str:
    """One path component from a street name or grid id, unique per distinct ``value``.

    Unsafe characters (separators, ``:*?"<>|[]``, controls) become ``_``; a value that had to be
    changed in any way (characters replaced, shortened, empty, reserved) gets ``_<8 hex of the
    original>`` so ``G:1`` and ``G?1`` never share a file. The result plus an extension of up to
    ``reserve_bytes`` bytes fits in :data:`MAX_NAME_BYTES`.
    """
    original = "" if value is None else str(value)
    norm = unicodedata.normalize("NFC", original).strip()
    text = _UNSAFE_NAME.sub("_", clean_text(norm)).strip(". ")
    limit = MAX_NAME_BYTES - reserve_bytes
    changed = text != original or not text or bool(_WINDOWS_RESERVED.match(text))
    if not changed and len(text.encode("utf-8")) <= limit:
        return text
    suffix = f"_{short_hash(original)}"
    base = _truncate_bytes(text or default, limit - len(suffix.encode("utf-8")) - 1).rstrip(". ")
    if _WINDOWS_RESERVED.match(f"{base}{suffix}"):
        base = f"_{base}"
    return f"{base}{suffix}"


def sheet_title(value: Any, default: str = "list") -> str:
    """A worksheet title openpyxl/Excel accept: no ``[]:*?/\\``, at most 31 characters, not empty."""
    text = re.sub(r"[\[\]:*?/\\']", "_", clean_text(value)).strip()
    return (text or default)[:31]


def workbook_bytes(wb: Any, stamp: dt.datetime) -> bytes:
    """An openpyxl workbook as deterministic bytes: properties and zip entry times set to ``stamp``."""
    from openpyxl.writer.excel import ExcelWriter

    wb.properties.created = stamp
    wb.properties.modified = stamp
    raw = io.BytesIO()
    archive = zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    ExcelWriter(wb, archive).save()  # not save_workbook(): that stamps "modified" with now
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, 0, 0, 0)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=date_time)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()
