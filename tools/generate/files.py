"""Deterministic file writers: CSV in a given encoding, write-only XLSX with fixed zip metadata,
and a chunked Parquet writer for the truth."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook

FIXED_TIME = (2026, 1, 1, 0, 0, 0)
_W3C = "2026-01-01T00:00:00Z"


def write_csv(path: Path, encoding: str, header: list[str], rows: Iterable[list[str]]) -> int:
    """Write ``rows`` (lists of cells; a malformed row may have another length); returns row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(row)
            n += 1
    return n


def write_xlsx(path: Path, header: list[str], rows: Iterable[list[str]], sheet: str = "Sheet1") -> int:
    """Write a one-sheet XLSX in write-only mode, then fix zip timestamps so bytes are reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(header)
    n = 0
    for row in rows:
        ws.append(row)
        n += 1
    buf = io.BytesIO()
    wb.save(buf)
    _normalise_zip(buf.getvalue(), path)
    return n


def _normalise_zip(data: bytes, path: Path) -> None:
    src = zipfile.ZipFile(io.BytesIO(data))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)", rb"\g<1>" + _W3C.encode() + rb"\3",
                              body)
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            out.writestr(zi, body)


class ChunkedParquet:
    """Append rows (tuples) and flush them to one Parquet file in chunks (bounded memory)."""

    def __init__(self, path: Path, schema: pa.Schema, chunk: int = 200_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.schema, self.chunk = path, schema, chunk
        self.rows: list[tuple] = []
        self.writer: pq.ParquetWriter | None = None
        self.count = 0

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        cols = list(zip(*self.rows, strict=True))
        table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, self.schema, strict=True)],
                                     schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self.writer.write_table(table)
        self.count += len(self.rows)
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self.writer is None:
            pq.write_table(self.schema.empty_table(), self.path)
        else:
            self.writer.close()
