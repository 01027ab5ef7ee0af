"""Finding the deliveries of one night in ``landing/<source>/<YYYY-MM-DD>/`` and reporting what does not fit.

Only the run date's folder of each declared source is loaded. Everything else that
looks like a mistake is reported (never loaded): a date folder whose name is not a
date (``not_a_date_folder``, with the number of files in it), a file directly in a
source folder (``file_outside_date_folder``), a file in tonight's folder that does
not match the source's ``file_glob`` (``not_matching_glob``), a folder inside it
(``not_a_file``), a folder in landing that is not a declared source (``unknown_source``).
A delivery in another source's date folder is found by the reader (``WRONG_SOURCE``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from pathlib import Path

from gridlake.sources import Source, SourceFile


@dataclass(frozen=True)
class Anomaly:
    """Something in landing that was not loaded, and why."""

    kind: str  # not_a_date_folder | file_outside_date_folder | not_matching_glob | unknown_source | not_a_file
    path: str
    source: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "path": self.path, "source": self.source, "detail": self.detail}


def _files_in(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def _is_date(name: str) -> bool:
    try:
        return dt.date.fromisoformat(name).isoformat() == name
    except ValueError:
        return False


def discover(landing: Path, sources: dict[str, Source], run_date: dt.date) -> tuple[list[SourceFile], list[Anomaly]]:
    """Tonight's files per declared source (sorted by name) and the anomalies found in landing."""
    files: list[SourceFile] = []
    anomalies: list[Anomaly] = []
    if not landing.exists():
        return files, anomalies
    for child in sorted(landing.iterdir()):
        if child.name.startswith(".") or child.name.startswith("_"):
            continue
        if child.name not in sources:
            anomalies.append(Anomaly("unknown_source", str(child)))
    day = run_date.isoformat()
    for name, src in sources.items():
        base = landing / name
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            if folder.name.startswith("."):
                continue
            if not folder.is_dir():
                anomalies.append(Anomaly("file_outside_date_folder", str(folder), name,
                                         "a file directly in the source folder, not in a YYYY-MM-DD folder; not loaded"))
            elif not _is_date(folder.name):
                anomalies.append(Anomaly("not_a_date_folder", str(folder), name,
                                         f"not a YYYY-MM-DD date; {_files_in(folder)} file(s) in it not loaded"))
        folder = base / day
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            if not f.is_file():
                anomalies.append(Anomaly("not_a_file", str(f), name))
            elif not fnmatch.fnmatch(f.name, src.file_glob):
                anomalies.append(Anomaly("not_matching_glob", str(f), name))
            else:
                files.append(SourceFile(source=name, delivery_date=day, path=f))
    return files, anomalies
