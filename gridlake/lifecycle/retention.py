"""Retention per layer (conf/gridlake.yaml ``retention``), as pure rules.

- :func:`needed_versions`: per table, the oldest Delta version some night still needs: the last
  manifest, every night started within ``time_travel_days``, and any night running now. VACUUM never
  goes further back than the commit time of that version (:func:`vacuum_hours`).
- :func:`bronze_expired`, :func:`scd2_expired`, :func:`quarantine_expired`, :func:`typed_quarantine_expired`:
  SQL conditions of the rows the window ends (bronze rows are deleted, their counts stay in
  ``bronze._ingestion_log``, ``silver._conservation`` and the manifests; closed SCD2 versions are deleted;
  quarantined rows keep source, reason code and lineage but lose the raw line, business key and detail, and
  their typed copies in ``silver._checksum_failed`` are deleted).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from gridlake.config import RetentionConfig
from schemas.silver import CHECKSUM_FAILED_TABLE

#: Columns of the quarantine (and duplicates) tables that hold raw delivered values.
QUARANTINE_RAW_COLUMNS = ("_raw_line", "business_key", "reason_detail")
#: Bronze tables that are logs of counts, never personal rows: retention does not delete from them.
BRONZE_LOGS = ("_ingestion_log",)
#: Silver side tables of delivered rows that failed or repeated (raw values inside).
SILVER_SIDE = ("_quarantine", "_duplicates")
#: Silver side tables of quarantined rows typed (``silver._checksum_failed``): a row is deleted when the
#: quarantine's raw values of its delivery are stripped (:func:`typed_quarantine_expired`).
SILVER_TYPED_SIDE = (CHECKSUM_FAILED_TABLE,)


def _started(doc: Mapping[str, Any]) -> dt.datetime | None:
    raw = doc.get("started_at") or doc.get("finished_at")
    if not raw:
        return None
    when = dt.datetime.fromisoformat(str(raw))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def needed_versions(manifests: Iterable[Mapping[str, Any]], now: dt.datetime, time_travel_days: int,
                    running: Iterable[str] = ()) -> dict[str, int]:
    """``{"layer.table": oldest needed version}`` over the manifests that must stay reproducible.

    Needed: the newest manifest (whatever its age), every manifest started within
    ``time_travel_days`` of ``now``, and every manifest of a night in ``running`` (dates whose
    night lock is held).
    """
    docs = [d for d in manifests if d.get("table_versions")]
    if not docs:
        return {}
    running = set(running)
    horizon = now - dt.timedelta(days=time_travel_days)
    newest = max(docs, key=lambda d: (str(d.get("run_date", "")), str(d.get("started_at", ""))))
    keep = [d for d in docs if d is newest or d.get("run_date") in running
            or ((s := _started(d)) is not None and s >= horizon)]
    out: dict[str, int] = {}
    for d in keep:
        for table, version in d["table_versions"].items():
            if isinstance(version, int) and version >= 0:
                out[table] = min(out.get(table, version), version)
    return out


def vacuum_hours(configured: int, needed_commit_time: dt.datetime | None, now: dt.datetime) -> int:
    """The VACUUM retention for one table: the layer's hours, longer when a needed version is older.

    The files of version v are removed by a later commit, so keeping every file removed since v's own
    commit time (plus one hour of margin) keeps v readable.
    """
    if needed_commit_time is None:
        return configured
    age = (now - needed_commit_time).total_seconds() / 3600.0
    return max(configured, math.ceil(age) + 1)


def cutoff(today: dt.date, days: int) -> dt.date:
    """The first date still inside a window of ``days`` ending ``today``."""
    return today - dt.timedelta(days=days)


def bronze_expired(today: dt.date, cfg: RetentionConfig) -> str:
    """Bronze rows delivered before the window."""
    return f"_delivery_date < DATE'{cutoff(today, cfg.bronze_days).isoformat()}'"


def scd2_expired(today: dt.date, cfg: RetentionConfig) -> str:
    """Closed SCD2 versions that ended before the window (current versions always stay)."""
    return f"NOT is_current AND valid_to IS NOT NULL AND valid_to < DATE'{cutoff(today, cfg.silver_history_days).isoformat()}'"


def quarantine_expired(today: dt.date, cfg: RetentionConfig, columns: Iterable[str]) -> tuple[str, dict[str, str]]:
    """Condition and SET of the quarantined rows whose raw values the window ends (idempotent)."""
    raw = [c for c in QUARANTINE_RAW_COLUMNS if c in set(columns)]
    day = cutoff(today, cfg.quarantine_raw_days).isoformat()
    cond = f"_delivery_date < DATE'{day}' AND (" + " OR ".join(f"`{c}` IS NOT NULL" for c in raw) + ")"
    return cond, {f"`{c}`": "NULL" for c in raw}


def typed_quarantine_expired(today: dt.date, cfg: RetentionConfig) -> str:
    """Typed quarantined rows delivered before the quarantine's raw-value window (the same cut-off as
    :func:`quarantine_expired`: their raw lines are stripped, so their values go too)."""
    return f"_delivery_date < DATE'{cutoff(today, cfg.quarantine_raw_days).isoformat()}'"


def is_scd2(columns: Iterable[str]) -> bool:
    """A table with SCD2 history columns."""
    return {"valid_to", "is_current"} <= set(columns)
