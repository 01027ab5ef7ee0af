"""What every reader shares: the row and delivery records, header detection and mapping, row building.

:mod:`jobs.bronze.readers` (CSV) and :mod:`jobs.bronze.xlsx` both build on this module
(neither imports the other's private names).

Headers are matched with :func:`gridlake.sources.normalise_header` against every alias
of a source's columns (``conf/sources.yaml``). The header is the best-matching row among
the first ``header_scan_rows`` rows (:func:`pick_header`): title rows (``福田区XX街道2026年
11月出租屋登记表``), blank rows and merged title cells above it are skipped and named in a
note. The mapping as seen is kept (:attr:`Delivery.header_map`, JSON in the ingestion log).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gridlake.sources import Source, load_sources, normalise_header

SURROGATE = re.compile("[\udc80-\udcff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MAX_FIELD_CHARS = 64 * 1024  # a longer field makes its row FIELD_TOO_LARGE
MAX_LINE_CHARS = 1 << 20  # a longer physical line is not parsed (memory stays bounded)
MAX_RAW_CHARS = 8 * 1024  # raw lines of malformed rows are kept up to this length


def reason_code(text: str | None) -> str | None:
    """The reason code of an error, note or malformed reason (the text before the first ``:``)."""
    return text.split(":", 1)[0].strip() if text else None


@dataclass
class BronzeRow:
    """One delivered row: canonical values (strings), extras and provenance of the row."""

    row_number: int
    values: dict[str, str | None]
    extra: dict[str, str | None] | None = None
    raw_line: str | None = None
    malformed_reason: str | None = None


@dataclass
class Delivery:
    """An opened delivery file: header mapping, drift report, notes and a row stream."""

    path: Path
    source: Source
    header: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | empty | header_only | rejected
    error: str | None = None  # "CODE: detail" when status is not ok
    extra_columns: list[str] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "CODE: detail" for a file that loads
    encoding: str | None = None
    detected_format: str | None = None  # csv | xlsx, from the content
    header_row: int | None = None  # 1-based row (CSV: physical line) of the header
    header_map: list[tuple[str, str | None]] = field(default_factory=list)  # header as seen -> canonical
    form_notes: list[str] = field(default_factory=list)  # how the file differs in form (the log's ``note``)
    _rows: Iterator[BronzeRow] | None = None
    _first: BronzeRow | None = None

    def rows(self) -> Iterator[BronzeRow]:
        """Stream the data rows (nothing for empty, header-only or rejected files)."""
        if self.status != "ok" or self._rows is None:
            return
        if self._first is not None:
            yield self._first
        yield from self._rows

    def reject(self, error: str, status: str = "rejected") -> Delivery:
        """Mark the file as not loading (``error`` is "CODE: detail") and return it."""
        self.status, self.error = status, error[:1000]
        return self

    def start(self, rows: Iterator[BronzeRow]) -> Delivery:
        """Attach the row stream; a stream without a row makes the file ``header_only``."""
        first = next(rows, None)
        if first is None:
            return self.reject("HEADER_ONLY: a header and no data rows", "header_only")
        self._first, self._rows = first, rows
        return self

    def extra_found(self, name: str) -> None:
        """A column found only in the rows (data under an empty header): named like the header's extras."""
        if name in self.extra_columns:
            return
        self.extra_columns.append(name)
        note = f"EXTRA_COLUMNS: {', '.join(self.extra_columns)} (kept in _extra)"
        at = [i for i, n in enumerate(self.notes) if n.startswith("EXTRA_COLUMNS:")]
        if at:
            self.notes[at[0]] = note
        else:
            self.notes.append(note)

    @property
    def note(self) -> str | None:
        """The reader's notes as one text (recorded in the error column of a loaded file), or None."""
        return "; ".join(self.notes)[:1000] if self.notes else None

    @property
    def header_map_json(self) -> str | None:
        """``{"<header as seen>": "<canonical or null>"}`` (a repeated header gets `` #2``...)."""
        if not self.header_map:
            return None
        out: dict[str, str | None] = {}
        for seen, canon in self.header_map:
            key, n = seen, 1
            while key in out:
                n += 1
                key = f"{seen} #{n}"
            out[key] = canon
        return json.dumps(out, ensure_ascii=False)[:8000]


_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))   # BOM and zero-width characters: deleted


def canonical_header(name: str | None) -> str:
    """A header cell as shown (NFKC, BOM and zero-width characters and surrounding spaces removed)."""
    return unicodedata.normalize("NFKC", name or "").translate(_INVISIBLE).strip()


_LONG_DIGITS = re.compile(r"\d{6,}")
MAX_SHOWN_HEADER = 40


def shown_header(name: str | None) -> str:
    """A header cell as recorded (header map, extra columns, logs): :func:`canonical_header`, with runs of 6+
    digits as ``#`` and at most MAX_SHOWN_HEADER characters - a data row taken for a header (a file
    without one) must not put an ID number or phone into the ingestion log."""
    s = _LONG_DIGITS.sub("#", canonical_header(name))
    return s if len(s) <= MAX_SHOWN_HEADER else s[:MAX_SHOWN_HEADER] + "…"


def header_score(cells: Sequence[str | None], source: Source) -> tuple[int, int]:
    """(required columns matched, columns matched) by a candidate header row."""
    by_header = source.header_to_canonical
    hit = {by_header[n] for n in (normalise_header(c) for c in cells if c) if n in by_header}
    return sum(1 for c in source.required if c in hit), len(hit)


def pick_header(candidates: Sequence[Sequence[str | None]], source: Source) -> int | None:
    """Index of the header among the first rows: the one matching most required, then most columns; when
    no row matches any column, the first non-blank row (so that the rejection names what is missing)."""
    best, best_score = None, (0, 0)
    first = None
    for i, cells in enumerate(candidates):
        if not any(c and str(c).strip() for c in cells):
            continue
        if first is None:
            first = i
        score = header_score(cells, source)
        if score > best_score:
            best, best_score = i, score
    return best if best is not None else first


def _other_source(header: list[str], source: Source) -> str | None:
    """The name of another declared source whose required columns this header has, if exactly one."""
    cells = {normalise_header(h) for h in header}
    hits = []
    for name, other in load_sources().items():
        if name == source.name:
            continue
        by_header = other.header_to_canonical
        have = {by_header[c] for c in cells if c in by_header}
        if all(c in have for c in other.required):
            hits.append(name)
    return hits[0] if len(hits) == 1 else None


def extra_key(header: str, position: int) -> str:
    """The ``_extra`` key of a column no canonical column takes (an empty header: its column number)."""
    return header if header else f"(column {position + 1})"


def map_header(delivery: Delivery, header: list[str]) -> list[str | None]:
    """Canonical column per header position (None for extras); fills drift fields, header map and notes."""
    src = delivery.source
    by_header = src.header_to_canonical
    mapped: list[str | None] = []
    seen: set[str] = set()
    renamed: list[str] = []
    for h in header:
        shown = shown_header(h)
        canon = by_header.get(normalise_header(h))
        if canon is None or canon in seen:
            mapped.append(None)
            if shown:
                delivery.extra_columns.append(shown if canon is None else f"{shown} (repeated)")
        else:
            mapped.append(canon)
            seen.add(canon)
            if shown != src.columns[canon]:
                renamed.append(f"{shown}->{canon}")
        if shown or canon:
            delivery.header_map.append((shown, mapped[-1]))
    delivery.missing_required = [c for c in src.required if c not in seen]
    delivery.missing_optional = [c for c in src.columns if c not in seen and c not in src.required]
    if delivery.missing_required:
        names = ", ".join(f"{c} ({src.columns[c]})" for c in delivery.missing_required)
        other = _other_source(header, src)
        if other:
            delivery.reject(f"WRONG_SOURCE: the header is that of source {other}, not {src.name} (a file in the "
                            f"wrong folder?); missing required column(s): {names}")
        else:
            delivery.reject(f"MISSING_COLUMNS: missing required column(s): {names}")
        return mapped
    if renamed:
        delivery.form_notes.append(f"headers renamed: {', '.join(renamed)}"[:500])
    if delivery.extra_columns:
        delivery.notes.append(f"EXTRA_COLUMNS: {', '.join(delivery.extra_columns)} (kept in _extra)")
    noted = [c for c in delivery.missing_optional if c not in src.often_absent]
    if noted:
        names = ", ".join(f"{c} ({src.columns[c]})" for c in noted)
        delivery.notes.append(f"MISSING_OPTIONAL_COLUMNS: {names} (loaded as empty)")
    return mapped


def note_title_rows(delivery: Delivery, skipped: int) -> None:
    """Record that the header was found below ``skipped`` title or blank rows (never their text)."""
    if skipped:
        delivery.form_notes.append(f"header on row {delivery.header_row}, {skipped} title/blank row(s) above it "
                                   "skipped")


def trimmed(cells: list[str | None], n: int) -> list[str | None]:
    """``cells`` without trailing empty cells beyond the ``n`` header cells (not a wrong field count)."""
    out = list(cells)
    while len(out) > n and (out[-1] is None or out[-1] == ""):
        out.pop()
    return out


def row_from_cells(
    delivery: Delivery, mapped: list[str | None], header: list[str], cells: list[str | None], number: int,
    raw: str | None, wide_ok: bool = False,
) -> BronzeRow:
    """One bronze row from the cells of a record: canonical values, extras, or a malformed reason.

    ``wide_ok`` (sheets): cells beyond the header are extras named by their column, not a wrong count.
    """
    values: dict[str, str | None] = dict.fromkeys(delivery.source.columns)
    n = len(header)
    cells = trimmed(cells, n)
    # no field is longer than the record's text (CSV: its lines; sheets: its cells as JSON)
    big = max((len(c) for c in cells if isinstance(c, str)), default=0) \
        if raw is None or len(raw) > MAX_FIELD_CHARS else 0
    if big > MAX_FIELD_CHARS:
        return BronzeRow(number, values, None, clean_raw(raw),
                         f"FIELD_TOO_LARGE: a field of {big} characters (limit {MAX_FIELD_CHARS})")
    # a cell holds an undecodable byte only if the record's text does (CSV: its lines; sheets: its cells as JSON)
    if (raw is None or SURROGATE.search(raw)) and any(isinstance(c, str) and SURROGATE.search(c) for c in cells):
        return BronzeRow(number, values, None, clean_raw(raw), "UNDECODABLE_BYTES: bytes not valid in "
                         f"{delivery.encoding}")
    if len(cells) != n and not (wide_ok and len(cells) > n):
        return BronzeRow(number, values, None, clean_raw(raw), f"FIELD_COUNT: expected {n} fields, got {len(cells)}")
    extra: dict[str, str | None] = {}
    for i, cell in enumerate(cells):
        canon = mapped[i] if i < n else None
        if canon is not None:
            values[canon] = cell
            continue
        head = canonical_header(header[i]) if i < n else ""
        if not head and (cell is None or not str(cell).strip()):
            continue  # nothing under an empty header
        key, k = extra_key(head, i), 1
        if not head:
            delivery.extra_found(key)
        while key in extra:  # a repeated header keeps both values
            k += 1
            key = f"{extra_key(head, i)} #{k}"
        extra[key] = cell
    return BronzeRow(number, values, extra or None, None, None)


def clean_raw(text: str | None) -> str | None:
    """Raw text safe to store: undecodable bytes as U+FFFD, control characters as U+FFFD, at most
    MAX_RAW_CHARS, without the final line break."""
    if text is None:
        return None
    text = text.rstrip("\r\n")
    if len(text) > MAX_RAW_CHARS:
        text = f"{text[:MAX_RAW_CHARS]}…[{len(text)} characters, shortened]"
    return _CONTROL.sub("\ufffd", SURROGATE.sub("\ufffd", text))


_DIGITS = re.compile(r"\d{4,}")


def safe_error(exc: BaseException, limit: int = 300) -> str:
    """An exception as text fit for logs and the ingestion log: its type and message with every run of 4+
    digits masked and everything but printable ASCII dropped (values quoted by a library - an ID number,
    a name, an address - never pass)."""
    from gridlake.sanitise import describe_exception  # the one sanitiser; bronze masks shorter digit runs too

    msg = "".join(ch if " " <= ch <= "~" else "?" for ch in describe_exception(exc, limit=max(limit, 1000)))
    return re.sub(r"\?{2,}", "?", _DIGITS.sub("#", msg))[:limit]
