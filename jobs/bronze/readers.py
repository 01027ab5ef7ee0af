"""Reading delivered files row by row, in plain Python (no Spark), without losing a row.

A :class:`Delivery` is opened from a file and its :class:`gridlake.sources.Source`:
the header is read and mapped to canonical names (unknown extra columns kept,
missing required columns named), then :meth:`Delivery.rows` streams
:class:`BronzeRow` records. Malformed rows are yielded too, with their raw line
and a reason, so that bronze holds every delivered row.

CSV files are first looked at as bytes (:mod:`jobs.bronze.sniff`): binary content is
rejected, and a file in the other of the two encodings (UTF-8 / ``gb18030``) than
the declared one is read in the encoding its bytes and header show, with a note.
Text is decoded with ``surrogateescape`` so that undecodable bytes stay visible per
row; a byte-order mark is stripped; CRLF, LF and CR line ends may be mixed. XLSX
files are read by :mod:`jobs.bronze.xlsx`.

Every outcome carries a reason code (the text before the first ``:``):

File level - ``Delivery.status`` / ``Delivery.error`` (the file loads no row):
  ``EMPTY_FILE`` (status ``empty``), ``HEADER_ONLY`` (status ``header_only``),
  ``MISSING_COLUMNS``, ``WRONG_SOURCE`` (the header is another source's: a file in
  the wrong folder), ``BAD_HEADER``, ``BINARY_CONTENT``, ``NOT_XLSX``,
  ``MULTIPLE_DATA_SHEETS`` (status ``rejected``).
File level - ``Delivery.notes`` (the file loads; the note is recorded):
  ``ENCODING_MISMATCH``, ``EXTRA_COLUMNS``, ``MISSING_OPTIONAL_COLUMNS``, ``OTHER_SHEETS``.
Row level - ``BronzeRow.malformed_reason`` (the row is kept in bronze with its raw
line and quarantined by silver as ``MALFORMED_ROW``):
  ``FIELD_COUNT``, ``UNDECODABLE_BYTES``, ``CSV_SYNTAX``, ``FIELD_TOO_LARGE``
  (a field over :data:`MAX_FIELD_CHARS` or a line over :data:`MAX_LINE_CHARS`; the
  raw line is kept shortened to :data:`MAX_RAW_CHARS`), ``TRUNCATED_ROW`` (the file
  ends inside the row), ``UNBALANCED_QUOTE`` (a quote opened in the row does not
  close properly; the lines it swallowed are read again as rows), ``FORMULA_NOT_CACHED``,
  ``FORMULA_ERROR``, ``READ_ERROR``.

Quoting is parsed leniently on one line (``"12号"楼`` reads as ``12号楼``); a record that
spans lines must be well-formed CSV (each quoted field closes before a delimiter or the
line end), else its first line is ``UNBALANCED_QUOTE`` and the following lines are read
again - so a stray quote costs one row, never the rows after it.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gridlake.sources import Source, load_sources
from jobs.bronze.sniff import family, sniff

_SURROGATE = re.compile("[\udc80-\udcff]")
_BOMS = ("\ufeff",)
_NEWLINES = ("\n", "\r")

MAX_FIELD_CHARS = 64 * 1024  # a longer field makes its row FIELD_TOO_LARGE
MAX_LINE_CHARS = 1 << 20  # a longer physical line is not parsed (memory stays bounded)
MAX_RAW_CHARS = 8 * 1024  # raw lines of malformed rows are kept up to this length


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


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

    @property
    def note(self) -> str | None:
        """The notes as one text (recorded in the ingestion log of a loaded file), or None."""
        return "; ".join(self.notes)[:1000] if self.notes else None


def canonical_header(name: str) -> str:
    """Header cell as compared with sources.yaml: NFKC, BOM and surrounding spaces removed."""
    s = unicodedata.normalize("NFKC", name or "")
    for bom in _BOMS:
        s = s.replace(bom, "")
    return s.strip()


def _mapping(source: Source) -> dict[str, str]:
    by_header = {canonical_header(h): c for h, c in source.header_to_canonical.items()}
    by_header.update({c: c for c in source.columns})
    return by_header


def _other_source(header: list[str], source: Source) -> str | None:
    """The name of another declared source whose required columns this header has, if exactly one."""
    cells = {canonical_header(h) for h in header}
    hits = []
    for name, other in load_sources().items():
        if name == source.name:
            continue
        by_header = _mapping(other)
        have = {by_header[c] for c in cells if c in by_header}
        if all(c in have for c in other.required):
            hits.append(name)
    return hits[0] if len(hits) == 1 else None


def _map_header(delivery: Delivery, header: list[str]) -> list[str | None]:
    """Canonical column per header position (None for extras); fills drift fields and notes of ``delivery``."""
    src = delivery.source
    by_header = _mapping(src)
    mapped: list[str | None] = []
    seen: set[str] = set()
    for h in header:
        canon = by_header.get(canonical_header(h))
        if canon is None or canon in seen:
            mapped.append(None)
            if canonical_header(h):
                delivery.extra_columns.append(canonical_header(h))
        else:
            mapped.append(canon)
            seen.add(canon)
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
    if delivery.extra_columns:
        delivery.notes.append(f"EXTRA_COLUMNS: {', '.join(delivery.extra_columns)} (kept in _extra)")
    if delivery.missing_optional:
        names = ", ".join(f"{c} ({src.columns[c]})" for c in delivery.missing_optional)
        delivery.notes.append(f"MISSING_OPTIONAL_COLUMNS: {names} (loaded as empty)")
    return mapped


def _trimmed(cells: list[str | None], n: int) -> list[str | None]:
    trimmed = list(cells)
    while len(trimmed) > n and (trimmed[-1] is None or trimmed[-1] == ""):
        trimmed.pop()  # trailing empty cells beyond the header are not a wrong field count
    return trimmed


def _row_from_cells(
    delivery: Delivery, mapped: list[str | None], header: list[str], cells: list[str | None], number: int,
    raw: str | None,
) -> BronzeRow:
    values: dict[str, str | None] = dict.fromkeys(delivery.source.columns)
    n = len(header)
    trimmed = _trimmed(cells, n)
    big = max((len(c) for c in trimmed if isinstance(c, str)), default=0)
    if big > MAX_FIELD_CHARS:
        return BronzeRow(number, values, None, _clean(raw),
                         f"FIELD_TOO_LARGE: a field of {big} characters (limit {MAX_FIELD_CHARS})")
    if any(isinstance(c, str) and _SURROGATE.search(c) for c in trimmed):
        return BronzeRow(number, values, None, _clean(raw), "UNDECODABLE_BYTES: bytes not valid in "
                         f"{delivery.encoding}")
    if len(trimmed) != n:
        return BronzeRow(number, values, None, _clean(raw), f"FIELD_COUNT: expected {n} fields, got {len(trimmed)}")
    extra: dict[str, str | None] = {}
    for canon, head, cell in zip(mapped, header, trimmed, strict=True):
        if canon is not None:
            values[canon] = cell
        elif canonical_header(head):
            extra[canonical_header(head)] = cell
    return BronzeRow(number, values, extra or None, None, None)


def _clean(text: str | None) -> str | None:
    """Raw text safe to store (undecodable bytes shown as U+FFFD, at most MAX_RAW_CHARS), without the line break."""
    if text is None:
        return None
    text = text.rstrip("\r\n")
    if len(text) > MAX_RAW_CHARS:
        text = f"{text[:MAX_RAW_CHARS]}…[{len(text)} characters, shortened]"
    return _SURROGATE.sub("\ufffd", text)


# ---------------------------------------------------------------------------- CSV
class _LineTooLong(Exception):
    """A physical line longer than MAX_LINE_CHARS (its rest has been skipped)."""

    def __init__(self, prefix: str, chars: int) -> None:
        super().__init__(f"a line of {chars} characters")
        self.prefix, self.chars = prefix, chars


class _LineTracker:
    """Text lines for the CSV reader: remembers the current record's lines, bounds line length, takes lines back."""

    def __init__(self, fh, max_line: int = MAX_LINE_CHARS) -> None:
        self._fh = fh
        self._max = max_line
        self.buffer: list[str] = []
        self.first = True
        self._pending: list[str] = []  # lines given back, last one first

    def __iter__(self) -> _LineTracker:
        return self

    def __next__(self) -> str:
        if self._pending:
            line = self._pending.pop()
        else:
            line = self._fh.readline(self._max + 1)
            if not line:
                raise StopIteration
            if self.first:
                self.first = False
                line = line.lstrip("\ufeff")
            if len(line) > self._max and not line.endswith(_NEWLINES):
                chars = len(line)
                while more := self._fh.readline(1 << 20):
                    chars += len(more)
                    if more.endswith(_NEWLINES):
                        break
                raise _LineTooLong("".join(self.buffer) + line[:MAX_RAW_CHARS], chars)
        self.buffer.append(line)
        return line

    def take(self) -> list[str]:
        lines, self.buffer = self.buffer, []
        return lines

    def give_back(self, lines: list[str]) -> None:
        self._pending.extend(reversed(lines))


def _strictly_one_record(lines: list[str]) -> bool:
    """Whether a multi-line record is one well-formed CSV record: every quoted field closes before a
    delimiter or line end (a stray quote further down can otherwise "close" a runaway one and
    give a record with the right field count that swallowed whole rows)."""
    try:
        return len(list(csv.reader(lines, strict=True))) == 1
    except csv.Error:
        return False


def _open_csv_as(path: Path, source: Source, encoding: str) -> Delivery:
    """Open a CSV delivery decoded as ``encoding``: read the header now, stream rows later."""
    d = Delivery(path=path, source=source, encoding=encoding)
    fh = open(path, encoding=family(encoding), errors="surrogateescape", newline="")
    lines = _LineTracker(fh)
    reader = csv.reader(lines, strict=False)

    def next_record() -> tuple[list[str] | None, str | None, list[str]]:
        try:
            rec = next(reader)
        except csv.Error as exc:
            code = "FIELD_TOO_LARGE" if "field larger than field limit" in str(exc) else "CSV_SYNTAX"
            return None, f"{code}: {exc}", lines.take()
        except _LineTooLong as exc:
            lines.take()
            return None, (f"FIELD_TOO_LARGE: a line of {exc.chars} characters (limit {MAX_LINE_CHARS}), "
                          "not parsed"), [exc.prefix]
        return rec, None, lines.take()

    try:
        while True:
            rec, err, raw = next_record()
            if err is not None:
                fh.close()
                return d.reject(f"BAD_HEADER: the first line is not a readable header ({err})")
            if any(c.strip() for c in rec):
                header = rec
                break
    except StopIteration:
        fh.close()
        return d.reject("EMPTY_FILE: no header, only blank lines", "empty")
    if any(_SURROGATE.search(h) for h in header):
        fh.close()
        return d.reject(f"BAD_HEADER: header not decodable as {encoding}")
    d.header = [canonical_header(h) for h in header]
    mapped = _map_header(d, header)
    if d.status == "rejected":
        fh.close()
        return d
    n = len(d.header)

    def stream() -> Iterator[BronzeRow]:
        number = 0
        try:
            while True:
                try:
                    rec, err, raw_lines = next_record()
                except StopIteration:
                    return
                if err is None and not any(c.strip() for c in rec):
                    continue  # a blank line is not a row
                number += 1
                if len(raw_lines) > 1 and (err is not None or len(_trimmed(rec, n)) != n
                                           or not _strictly_one_record(raw_lines)):
                    # A quote opened in the first line swallowed the next lines: keep the first line as
                    # the malformed row and read the swallowed lines again as rows of their own.
                    lines.give_back(raw_lines[1:])
                    yield BronzeRow(number, dict.fromkeys(source.columns), None, _clean(raw_lines[0]),
                                    "UNBALANCED_QUOTE: a quoted field opened in this line does not close; the "
                                    f"{len(raw_lines) - 1} line(s) after it were read again as rows")
                    continue
                raw = "".join(raw_lines)
                if err is not None:
                    row = BronzeRow(number, dict.fromkeys(source.columns), None, _clean(raw), err)
                else:
                    row = _row_from_cells(d, mapped, d.header, rec, number, raw)
                if (row.malformed_reason and raw and not raw.endswith(_NEWLINES)
                        and not row.malformed_reason.startswith("FIELD_TOO_LARGE")):
                    row.malformed_reason = ("TRUNCATED_ROW: the file ends inside this row, without a line break ("
                                            f"{row.malformed_reason})")
                yield row
        finally:
            fh.close()

    return d.start(stream())


def _candidates(declared: str, first: str) -> list[str]:
    out = [first, family(declared), "utf-8", "gb18030"]
    return list(dict.fromkeys(out))


def open_csv(path: Path, source: Source) -> Delivery:
    """Open a CSV delivery: check the bytes, pick the encoding whose header maps, read the header now."""
    seen = sniff(path, source.encoding)
    if seen.binary:
        return Delivery(path=path, source=source, encoding=source.encoding).reject(f"BINARY_CONTENT: {seen.binary}")
    first: Delivery | None = None
    for enc in _candidates(source.encoding, seen.encoding):
        d = _open_csv_as(path, source, enc)
        if first is None:
            first = d
        if d.status != "rejected":
            break
    else:
        return first  # no encoding gives a usable header: the reason is the one in the likeliest encoding
    if family(d.encoding or "") == family(source.encoding):
        d.encoding = source.encoding
    else:
        why = seen.evidence if seen.mismatch and seen.encoding == d.encoding else \
            f"the header maps to the source's columns only in {d.encoding}"
        d.notes.insert(0, f"ENCODING_MISMATCH: declared {source.encoding}, read as {d.encoding} ({why})")
    return d


def open_delivery(path: str | Path, source: Source) -> Delivery:
    """Open a delivery of ``source`` by its declared format; an empty (0-byte) file is status ``empty``."""
    path = Path(path)
    if path.stat().st_size == 0:
        return Delivery(path=path, source=source, encoding=source.encoding).reject("EMPTY_FILE: 0 bytes", "empty")
    if source.format == "xlsx" or path.suffix.lower() == ".xlsx":  # a workbook where a CSV was declared
        from jobs.bronze.xlsx import open_xlsx

        return open_xlsx(path, source)
    return open_csv(path, source)
