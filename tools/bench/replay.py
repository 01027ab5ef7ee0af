"""A local lake copied and rolled back to just before a night, so that the night can run again as it ran.

A night that succeeded is not run again (a rerun skips it, or with ``--recompute`` finds nothing new to
commit), so its stages cannot be profiled on the lake it left. ``python -m tools.bench.replay --data DIR
--night YYYY-MM-DD --to COPY`` copies the data root ``DIR`` to ``COPY`` and, in the copy, removes every Delta
commit made at or after the night's start (the earliest ``started_at`` of its run records in
``lake/_runs/``; each commit's time from its ``commitInfo.timestamp``), every table created after it, the
run records started after it, and the night's and later nights' stage records, quality results, exports and
reports. ``gridlake run --data COPY --date YYYY-MM-DD`` then runs the night again on the same deliveries
(``landing/`` is kept), whole or stage by stage. Data files of the removed commits stay, unreferenced.

A profiling aid for a local data root (``docs/speed.md``); never for a lake in use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import shutil
from pathlib import Path

from gridlake.config import Settings, load_settings
from gridlake.manifest import runs_dir

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"^(\d{20})\.")
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def night_start(settings: Settings, night: dt.date) -> dt.datetime:
    """The earliest ``started_at`` of ``night``'s run records: the JSON records (:func:`gridlake.manifest.runs_dir`;
    a rerun rewrites its run's record) and the run manifest table ``_runs.manifest`` (each run's first start)."""
    from gridlake.storage import open_delta

    docs = [json.loads(path.read_text(encoding="utf-8")) for path in runs_dir(settings).glob("*.json")]
    manifest = open_delta(settings, settings.table_path("_runs", "manifest"))
    if manifest is not None:
        rows = manifest.to_pyarrow_table(columns=["manifest_json"])
        docs += [json.loads(text) for text in rows.column("manifest_json").to_pylist() if text]
    starts = [dt.datetime.fromisoformat(d["started_at"]) for d in docs
              if d.get("run_date") == night.isoformat() and d.get("started_at")]
    if not starts:
        raise SystemExit(f"no run record of night {night} under {runs_dir(settings)}")
    return min(starts)


def _commit_millis(path: Path) -> float:
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if "commitInfo" in entry and entry["commitInfo"].get("timestamp") is not None:
            return float(entry["commitInfo"]["timestamp"])
    return path.stat().st_mtime * 1000


def roll_back_tables(lake: Path, cutoff: dt.datetime) -> dict[str, int]:
    """Every Delta table under ``lake`` back to its last commit before ``cutoff``; ``{"commits": n, "tables": n}``
    removed (a table whose first commit is not before it is removed whole)."""
    cut = cutoff.timestamp() * 1000
    removed = {"commits": 0, "tables": 0}
    for log_dir in sorted(lake.glob("**/_delta_log")):
        versions = {}
        for f in log_dir.iterdir():
            m = _COMMIT.match(f.name)
            if m and f.name.endswith(".json") and f.name.count(".") == 1:
                versions[int(m.group(1))] = f
        kept = [v for v, f in versions.items() if _commit_millis(f) < cut]
        if not kept:
            shutil.rmtree(log_dir.parent)
            removed["tables"] += 1
            continue
        last = max(kept)
        for f in list(log_dir.iterdir()):
            m = _COMMIT.match(f.name)
            if m and int(m.group(1)) > last:
                (shutil.rmtree if f.is_dir() else Path.unlink)(f)
                removed["commits"] += int(f.name.endswith(".json") and f.name.count(".") == 1)
        pointer = log_dir / "_last_checkpoint"
        if pointer.exists() and json.loads(pointer.read_text(encoding="utf-8")).get("version", -1) > last:
            pointer.unlink()   # Delta then finds the newest checkpoint left by listing the log
    return removed


def replay_copy(data: Path, night: dt.date, to: Path) -> dict[str, int]:
    """Copy ``data`` to ``to`` and roll the copy back to just before ``night`` (see the module doc)."""
    if to.exists():
        raise SystemExit(f"{to} exists: choose a new folder for the copy")
    shutil.copytree(data, to, symlinks=True)
    settings = load_settings(data_root=to)
    lake = Path(settings.lake).resolve()
    if not lake.is_relative_to(to.resolve()):   # e.g. GRIDLAKE_LAKE_ROOT set: never roll back another lake
        raise SystemExit(f"the copy's lake would be {settings.lake}, outside {to}: unset the lake's location")
    cutoff = night_start(settings, night)
    removed = roll_back_tables(lake, cutoff)
    for path in runs_dir(settings).glob("*.json"):
        started = json.loads(path.read_text(encoding="utf-8")).get("started_at")
        if started and dt.datetime.fromisoformat(started) >= cutoff:
            path.unlink()
    dated = [to / "state" / "stage_runs", to / "quality", to / "exports", *sorted((to / "reports").glob("*"))]
    for folder in dated:
        for path in folder.glob("*") if folder.is_dir() else ():
            m = _DATED.match(path.name)
            if m and dt.date.fromisoformat(m.group(1)) >= night:
                (shutil.rmtree if path.is_dir() else Path.unlink)(path)
    for transient in ("locks", "_staging"):
        shutil.rmtree(to / transient, ignore_errors=True)
    return removed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.replay", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the data root to copy (lake/, landing/, ...)")
    ap.add_argument("--night", type=dt.date.fromisoformat, required=True, help="the night to run again")
    ap.add_argument("--to", type=Path, required=True, help="a new folder for the rolled-back copy")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    removed = replay_copy(args.data, args.night, args.to)
    log.info("%s: rolled back to before night %s (%d commits, %d tables removed)", args.to, args.night,
             removed["commits"], removed["tables"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
