"""Helpers (no tests) for writing tiny deliveries into a landing folder with the headers of sources.yaml."""

from __future__ import annotations

import csv
import datetime as dt
import io as _io
from pathlib import Path

from gridlake.config import Settings
from gridlake.sources import get_source


def headers(source: str, columns: list[str] | None = None) -> list[str]:
    """Delivered (Chinese) headers of ``columns`` (default all) of ``source``."""
    src = get_source(source)
    return [src.columns[c] for c in (columns or src.canonical_columns)]


def write_csv(settings: Settings, source: str, day: str, rows: list[dict[str, str]], name: str = "part1.csv",
              columns: list[str] | None = None, extra: list[str] | None = None, encoding: str | None = None,
              bom: bool = False) -> Path:
    """Write a CSV delivery ``landing/<source>/<day>/<name>``; rows by canonical (or extra) column name."""
    src = get_source(source)
    cols = columns or src.canonical_columns
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([src.columns[c] for c in cols] + list(extra or []))
    for r in rows:
        w.writerow([r.get(c, "") for c in cols] + [r.get(e, "") for e in (extra or [])])
    folder = settings.landing / source / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = buf.getvalue().encode(encoding or src.encoding.replace("utf-8-sig", "utf-8"))
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_xlsx(settings: Settings, source: str, day: str, rows: list[dict[str, object]], name: str = "part1.xlsx",
               columns: list[str] | None = None, merge: str | None = None, formulas: dict[str, str] | None = None
               ) -> Path:
    """Write an XLSX delivery (first sheet), optionally merging a range and setting formula cells."""
    import openpyxl

    src = get_source(source)
    cols = columns or src.canonical_columns
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([src.columns[c] for c in cols])
    for r in rows:
        ws.append([r.get(c) for c in cols])
    for cell, f in (formulas or {}).items():
        ws[cell] = f
    if merge:
        ws.merge_cells(merge)
    folder = settings.landing / source / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    wb.save(path)
    return path


def run(spark, settings: Settings, day: str, stages=("bronze", "silver")):
    """Run stages of one night with the shared session; return the manifest."""
    from gridlake.pipeline import run_night

    return run_night(settings, dt.date.fromisoformat(day), list(stages), spark=spark)


VALID_ID = "11010519491231002X"  # checksum-valid 18-digit test ID (fictitious)
