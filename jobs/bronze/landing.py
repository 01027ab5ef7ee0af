"""Finding the deliveries of one night in ``landing/<source>/<YYYY-MM-DD>/`` and reporting what does not fit.

Only the run date's folder of each declared source is loaded, **with its sub-folders**
(a file in ``2026-11-01/街道A/`` is found, with a note). Nothing is followed through a
symbolic link (file or folder): a link is ignored with its reason, never read. A file
belongs to its source when its name matches the source's ``file_glob`` ignoring case
(``.CSV``, ``.Xlsx``), or has a delivery extension (``.csv``, ``.xlsx``, ``.xls``): the
reader then decides the format by content. Markers (``<name>.done``, ``.done``) and
hidden files are not deliveries.

Files found in tonight's folder but not read come back as :class:`SourceFile` with
``skip`` set (status ``ignored`` in the ingestion log): a symbolic link, something that
is not a regular file, a name that is neither the glob nor a delivery extension. The
mistakes around the folder are anomalies (never loaded): a date folder whose name is
not a date (``not_a_date_folder``, with the number of files in it), a file directly in a
source folder (``file_outside_date_folder``), a folder in landing that is not a declared
source (``unknown_source``); an ignored file is also listed (``not_matching_glob``,
``symlink``, ``not_a_file``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gridlake.sources import Source, SourceFile, shown_path

DELIVERY_EXTENSIONS = (".csv", ".xlsx", ".xls")
MARKER_SUFFIX = ".done"
MAX_DEPTH = 4  # sub-folders of a night folder searched this deep


@dataclass(frozen=True)
class Anomaly:
    """Something in landing that was not loaded, and why."""

    kind: str  # not_a_date_folder | file_outside_date_folder | not_matching_glob | unknown_source | not_a_file | symlink
    path: str
    source: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "path": self.path, "source": self.source, "detail": self.detail}


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []


def _files_in(folder: Path, depth: int = 0) -> int:
    """Regular files under ``folder`` (symbolic links not followed)."""
    n = 0
    for e in _entries(folder):
        if e.is_symlink():
            continue
        if e.is_dir(follow_symlinks=False) and depth < MAX_DEPTH:
            n += _files_in(Path(e.path), depth + 1)
        elif e.is_file(follow_symlinks=False):
            n += 1
    return n


def _is_date(name: str) -> bool:
    try:
        return dt.date.fromisoformat(name).isoformat() == name
    except ValueError:
        return False


def is_marker(name: str) -> bool:
    """Whether a file name is a ``.done`` marker (``x.csv.done``, ``.done``)."""
    return name.lower().endswith(MARKER_SUFFIX)


def belongs(name: str, src: Source) -> bool:
    """Whether a file name is a delivery of ``src``: its glob ignoring case, or a delivery extension."""
    low = name.lower()
    return fnmatch.fnmatchcase(low, src.file_glob.lower()) or low.endswith(DELIVERY_EXTENSIONS)


def _walk(folder: Path, night: Path, name: str, src: Source, day: str, files: list[SourceFile],
          anomalies: list[Anomaly], depth: int = 0) -> None:
    for e in _entries(folder):
        path = Path(e.path)
        if e.name.startswith(".") or is_marker(e.name):
            continue
        rel = path.relative_to(night)
        where = f"found in sub-folder {shown_path(rel.parent)}" if rel.parent != Path(".") else None
        if e.is_symlink():
            why = "SYMLINK: a symbolic link, not followed (deliver the file itself)"
            files.append(SourceFile(name, day, path, note=where, skip=why))
            anomalies.append(Anomaly("symlink", shown_path(path), name, why))
        elif e.is_dir(follow_symlinks=False):
            if depth < MAX_DEPTH:
                _walk(path, night, name, src, day, files, anomalies, depth + 1)
            else:
                anomalies.append(Anomaly("not_a_file", shown_path(path), name,
                                         f"folders nested deeper than {MAX_DEPTH} levels are not searched"))
        elif not stat.S_ISREG(e.stat(follow_symlinks=False).st_mode):
            why = "NOT_A_FILE: not a regular file (a pipe, socket or device)"
            files.append(SourceFile(name, day, path, note=where, skip=why))
            anomalies.append(Anomaly("not_a_file", shown_path(path), name, why))
        elif not belongs(e.name, src):
            why = (f"NOT_MATCHING: the name matches neither file_glob {src.file_glob!r} nor a delivery extension "
                   f"({', '.join(DELIVERY_EXTENSIONS)})")
            files.append(SourceFile(name, day, path, note=where, skip=why))
            anomalies.append(Anomaly("not_matching_glob", shown_path(path), name, why))
        else:
            files.append(SourceFile(name, day, path, note=where))


def discover(landing: Path, sources: dict[str, Source], run_date: dt.date,
             declared: Iterable[str] | None = None) -> tuple[list[SourceFile], list[Anomaly]]:
    """Tonight's files per source of ``sources`` (sorted by path; ignored ones with ``skip``) and the anomalies.

    ``declared``: every source name conf/sources.yaml declares (default: those of ``sources``). A folder
    named after none of them is ``unknown_source``; one of a declared source not asked for tonight (a run
    of one source, e.g. its Airflow ingestion) is simply not this run's to look at."""
    known = set(sources) if declared is None else set(declared) | set(sources)
    files: list[SourceFile] = []
    anomalies: list[Anomaly] = []
    if not landing.exists():
        return files, anomalies
    for child in _entries(landing):
        if child.name.startswith(".") or child.name.startswith("_"):
            continue
        if child.name not in known:
            anomalies.append(Anomaly("unknown_source", shown_path(child.path)))
    day = run_date.isoformat()
    for name, src in sources.items():
        base = landing / name
        if base.is_symlink():
            anomalies.append(Anomaly("symlink", shown_path(base), name, "the source folder is a symbolic link; "
                                     "not followed"))
            continue
        if not base.is_dir():
            continue
        for e in _entries(base):
            folder = Path(e.path)
            if e.name.startswith("."):
                continue
            if e.is_symlink():
                anomalies.append(Anomaly("symlink", shown_path(folder), name, "a symbolic link; not followed"))
            elif not e.is_dir(follow_symlinks=False):
                anomalies.append(Anomaly("file_outside_date_folder", shown_path(folder), name,
                                         "a file directly in the source folder, not in a YYYY-MM-DD folder; not loaded"))
            elif not _is_date(e.name):
                anomalies.append(Anomaly("not_a_date_folder", shown_path(folder), name,
                                         f"not a YYYY-MM-DD date; {_files_in(folder)} file(s) in it not loaded"))
        night = base / day
        if night.is_symlink() or not night.is_dir():
            continue
        found: list[SourceFile] = []
        _walk(night, night, name, src, day, found, anomalies)
        files.extend(sorted(found, key=lambda f: f.shown))
    return files, anomalies


def marker_present(f: SourceFile, night: Path) -> bool:
    """Whether the ``.done`` marker of a file exists: ``<name>.done`` next to it, or ``.done`` in the night
    folder or the file's folder (checked without following links)."""
    candidates = [f.path.with_name(f.path.name + MARKER_SUFFIX), f.path.parent / MARKER_SUFFIX, night / MARKER_SUFFIX]
    return any(os.path.lexists(c) and not os.path.islink(c) for c in candidates)
