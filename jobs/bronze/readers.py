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
files are read by :mod:`jobs.bronze.xlsx`; shared records and header handling live in
:mod:`jobs.bronze.delivery`.

The format is decided by the content, not the name (:func:`detect_format`): a zip with
``[Content_Types].xml`` is read as XLSX, a legacy OLE2 ``.xls`` is rejected
(``LEGACY_XLS``), anything else is read as CSV text; a format other than the declared
one is recorded as a note. A UTF-16 file with its byte-order mark is decoded as
UTF-16. The header is the best-matching row among the first ``header_scan_rows``
(title rows above it skipped); a repeated header line further down (two files
concatenated, a second BOM mid-file) is skipped and counted in a note. A file cut
off mid-transfer with NUL bytes at its end loads the rows before the damage; the
rest is one malformed row ``DAMAGED_TAIL``.

Every outcome carries a reason code (the text before the first ``:``):

File level - ``Delivery.status`` / ``Delivery.error`` (the file loads no row):
  ``EMPTY_FILE`` (status ``empty``), ``HEADER_ONLY`` (status ``header_only``),
  ``MISSING_COLUMNS``, ``WRONG_SOURCE``, ``LEGACY_XLS``, ``XLSX_LIMIT`` (the header is another source's: a file in
  the wrong folder), ``BAD_HEADER``, ``BINARY_CONTENT``, ``NOT_XLSX``,
  ``MULTIPLE_DATA_SHEETS`` (status ``rejected``).
File level - ``Delivery.notes`` (the file loads; the note is recorded):
  ``ENCODING_MISMATCH``, ``EXTRA_COLUMNS``, ``MISSING_OPTIONAL_COLUMNS``, ``OTHER_SHEETS``.
Row level - ``BronzeRow.malformed_reason`` (the row is kept in bronze with its raw
line and quarantined by silver as ``MALFORMED_ROW``):
  ``FIELD_COUNT``, ``UNDECODABLE_BYTES``, ``DAMAGED_TAIL``, ``CSV_SYNTAX``, ``FIELD_TOO_LARGE``
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
import zipfile
from collections.abc import Iterator
from pathlib import Path

from gridlake.io import sha256_file
from gridlake.sources import IngestConfig, Source, load_ingest_config
from jobs.bronze.delivery import (
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
    MAX_RAW_CHARS,
    SURROGATE,
    BronzeRow,
    Delivery,
    canonical_header,
    clean_raw,
    map_header,
    note_title_rows,
    pick_header,
    reason_code,
    row_from_cells,
    trimmed,
)
from jobs.bronze.sniff import family, sniff
from jobs.bronze.xlsx import open_xlsx

__all__ = ["MAX_FIELD_CHARS", "MAX_LINE_CHARS", "MAX_RAW_CHARS", "BronzeRow", "Delivery", "detect_format",
           "open_csv", "open_delivery", "reason_code", "sha256_file"]

_NEWLINES = ("\n", "\r")
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


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


class _CsvRecords:
    """CSV records of a text file with the physical lines each came from (see :class:`_LineTracker`)."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.fh = open(path, encoding=family(encoding), errors="surrogateescape", newline="")
        self.lines = _LineTracker(self.fh)
        self.reader = csv.reader(self.lines, strict=False)

    def next(self) -> tuple[list[str] | None, str | None, list[str]]:
        """(cells, error, raw lines) of the next record; StopIteration at the end of the file."""
        try:
            rec = next(self.reader)
        except csv.Error as exc:
            code = "FIELD_TOO_LARGE" if "field larger than field limit" in str(exc) else "CSV_SYNTAX"
            return None, f"{code}: {exc}", self.lines.take()
        except _LineTooLong as exc:
            self.lines.take()
            return None, (f"FIELD_TOO_LARGE: a line of {exc.chars} characters (limit {MAX_LINE_CHARS}), "
                          "not parsed"), [exc.prefix]
        return rec, None, self.lines.take()

    def rest_chars(self) -> int:
        """Skip to the end of the file; the number of characters skipped."""
        n = 0
        while block := self.fh.read(1 << 20):
            n += len(block)
        return n

    def close(self) -> None:
        self.fh.close()


def _scan_header(path: Path, source: Source, encoding: str, scan_rows: int) -> int:
    """How many records precede the header (title and blank rows), from the first ``scan_rows`` records."""
    recs = _CsvRecords(path, encoding)
    candidates: list[list[str | None]] = []
    try:
        while len(candidates) < scan_rows:
            try:
                rec, err, _ = recs.next()
            except StopIteration:
                break
            candidates.append([] if err is not None or rec is None else
                              [None if SURROGATE.search(c) else c for c in rec])
    finally:
        recs.close()
    best = pick_header(candidates, source)
    return best or 0


def _open_csv_as(path: Path, source: Source, encoding: str, scan_rows: int = 20) -> Delivery:
    """Open a CSV delivery decoded as ``encoding``: find and read the header now, stream rows later."""
    d = Delivery(path=path, source=source, encoding=encoding, detected_format="csv")
    skip = _scan_header(path, source, encoding, scan_rows)
    recs = _CsvRecords(path, encoding)
    physical = 0
    try:
        for _ in range(skip):
            _, _, raw = recs.next()
            physical += len(raw)
        while True:
            rec, err, raw = recs.next()
            physical += len(raw)
            if err is not None:
                recs.close()
                return d.reject(f"BAD_HEADER: the first line is not a readable header ({err})")
            if any(c.strip() for c in rec):
                header = rec
                break
            skip += 1
    except StopIteration:
        recs.close()
        return d.reject("EMPTY_FILE: no header, only blank lines", "empty")
    if any(SURROGATE.search(h) for h in header):
        recs.close()
        return d.reject(f"BAD_HEADER: header not decodable as {encoding}")
    if any("\x00" in h for h in header):
        recs.close()
        return d.reject("BINARY_CONTENT: NUL bytes in the header line")
    d.header_row = physical
    d.header = [canonical_header(h) for h in header]
    mapped = map_header(d, header)
    if d.status == "rejected":
        recs.close()
        return d
    note_title_rows(d, physical - 1)
    n = len(d.header)
    header_key = [canonical_header(h) for h in header]
    repeated = {"n": 0}

    def stream() -> Iterator[BronzeRow]:
        number = 0
        try:
            while True:
                try:
                    rec, err, raw_lines = recs.next()
                except StopIteration:
                    return
                raw = "".join(raw_lines)
                if "\x00" in raw:
                    number += 1
                    skipped = recs.rest_chars()
                    yield BronzeRow(number, dict.fromkeys(source.columns), None, clean_raw(raw),
                                    "DAMAGED_TAIL: NUL bytes from this row on (a transfer cut off or padded); this "
                                    f"row and the {skipped} character(s) after it are not read")
                    return
                if err is None and rec and rec[0].startswith("\ufeff"):
                    rec[0] = rec[0].lstrip("\ufeff")  # a second byte-order mark: files concatenated
                if err is None and not any(c.strip() for c in rec):
                    continue  # a blank line is not a row
                if (err is None and canonical_header(rec[0]) == header_key[0]
                        and [canonical_header(c) for c in trimmed(rec, n)] == header_key):
                    repeated["n"] += 1  # the header again (two files concatenated): not a row
                    if repeated["n"] == 1:
                        d.form_notes.append("repeated header line(s) skipped (files concatenated?)")
                    continue
                number += 1
                if len(raw_lines) > 1 and (err is not None or len(trimmed(rec, n)) != n
                                           or not _strictly_one_record(raw_lines)):
                    # A quote opened in the first line swallowed the next lines: keep the first line as
                    # the malformed row and read the swallowed lines again as rows of their own.
                    recs.lines.give_back(raw_lines[1:])
                    yield BronzeRow(number, dict.fromkeys(source.columns), None, clean_raw(raw_lines[0]),
                                    "UNBALANCED_QUOTE: a quoted field opened in this line does not close; the "
                                    f"{len(raw_lines) - 1} line(s) after it were read again as rows")
                    continue
                if err is not None:
                    row = BronzeRow(number, dict.fromkeys(source.columns), None, clean_raw(raw), err)
                else:
                    row = row_from_cells(d, mapped, d.header, rec, number, raw)
                if (row.malformed_reason and raw and not raw.endswith(_NEWLINES)
                        and not row.malformed_reason.startswith("FIELD_TOO_LARGE")):
                    row.malformed_reason = ("TRUNCATED_ROW: the file ends inside this row, without a line break ("
                                            f"{row.malformed_reason})")
                yield row
        finally:
            recs.close()

    return d.start(stream())


def _candidates(declared: str, first: str) -> list[str]:
    if first == "utf-16":
        return ["utf-16"]
    out = [first, family(declared), "utf-8", "gb18030"]
    return list(dict.fromkeys(out))


def open_csv(path: Path, source: Source, config: IngestConfig | None = None) -> Delivery:
    """Open a CSV delivery: check the bytes, pick the encoding whose header maps, read the header now."""
    config = config or load_ingest_config()
    seen = sniff(path, source.encoding)
    if seen.binary:
        return Delivery(path=path, source=source, encoding=source.encoding,
                        detected_format="csv").reject(f"BINARY_CONTENT: {seen.binary}")
    first: Delivery | None = None
    for enc in _candidates(source.encoding, seen.encoding):
        d = _open_csv_as(path, source, enc, config.header_scan_rows)
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


def detect_format(path: str | Path) -> tuple[str, str | None]:
    """(``csv`` | ``xlsx`` | ``xls`` | ``zip`` (damaged), why) from the first bytes: a zip holding ``[Content_Types].xml`` is XLSX,
    an OLE2 compound file is a legacy XLS, anything else is read as CSV text (whose checks name binary data)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(OLE2):
        return "xls", "an OLE2 compound file"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                if "[Content_Types].xml" in zf.namelist():
                    return "xlsx", None
        except (zipfile.BadZipFile, OSError, ValueError):
            return "zip", "a damaged zip"
        return "csv", "a zip without [Content_Types].xml"
    return "csv", None


def open_delivery(path: str | Path, source: Source, config: IngestConfig | None = None,
                  name: str | None = None) -> Delivery:
    """Open a delivery of ``source`` by its content (see :func:`detect_format`); an empty (0-byte) file is
    status ``empty``. ``name`` is the delivered file name (the path may be a private copy)."""
    path = Path(path)
    config = config or load_ingest_config()
    name = name or path.name
    if path.stat().st_size == 0:
        return Delivery(path=path, source=source, encoding=source.encoding).reject("EMPTY_FILE: 0 bytes", "empty")
    fmt, _why = detect_format(path)
    if fmt == "zip":  # a damaged zip: an XLSX source's reader names the damage, a CSV source's the ZIP magic
        fmt = "xlsx" if source.format == "xlsx" else "csv"
    suffix = Path(name).suffix or "(none)"
    if fmt == "xls":
        d = Delivery(path=path, source=source, encoding=None, detected_format=None)
        return d.reject("LEGACY_XLS: a legacy Excel 97-2003 workbook (.xls); save it as .xlsx (Excel/WPS: "
                        "另存为 .xlsx) and deliver again")
    d = open_xlsx(path, source, config) if fmt == "xlsx" else open_csv(path, source, config)
    d.detected_format = fmt
    if fmt != source.format:
        d.form_notes.insert(0, f"{fmt} delivered (declared {source.format}), file name {suffix}; read as {fmt}")
    elif suffix != f".{fmt}":
        d.form_notes.insert(0, f"{fmt} delivered with a {suffix} name")
    return d
