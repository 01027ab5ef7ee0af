"""gold.escalations and the supervisors' overdue lists (issue 19 item 2).

Every active discrepancy (open or escalated) has a time limit by severity (``conf/rules.yaml``
``deadlines.days``) counted from the night it was last opened (raised or reopened). Past it the
case is overdue: a reminder (催办) goes to the community's supervisor (level ``community``);
overdue by more than ``deadlines.street_after_overdue_days`` it reaches the street (level
``street``). A case opened more than once was closed and reopened on new evidence: 重办.

``transform`` gives one row per active case that is overdue or reopened, for night D (schema
:data:`ESCALATIONS`); the exports stage publishes it as the night's slice of ``gold.escalations``
and writes ``exports/<D>/supervisors/{community,street}/...xlsx`` (no person data at all).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DateType, IntegerType, StringType, StructField, StructType

from gridlake.cells import safe_stem, set_text_cell, sheet_title, workbook_bytes
from gridlake.loop_config import LoopConfig

S, D, I, B = StringType(), DateType(), IntegerType(), BooleanType()  # noqa: E741
ESCALATIONS = StructType([StructField(n, t, nullable) for n, t, nullable in (
    ("run_date", D, False), ("discrepancy_id", S, False), ("rule", S, False), ("severity", S, False),
    ("street", S, True), ("community", S, True), ("grid_id", S, True), ("house_code", S, True),
    ("status", S, False),
    ("opened", D, False),            # the night the case was last opened (raised or reopened)
    ("deadline", D, False),          # opened + deadlines.days[severity]
    ("overdue_days", I, False),      # run_date - deadline (<= 0: not overdue)
    ("level", S, True),              # community | street | null (not overdue)
    ("reopened", B, False),          # 重办: opened more than once
    ("reopen_count", I, False),
)])

LEVEL_LABELS = {"community": "社区", "street": "街道"}
SUPERVISOR_HEADERS = ("问题编号", "规则", "严重程度", "街道", "社区", "网格编号", "房屋编码", "状态", "立案日期",
                      "办理时限", "逾期天数", "升级层级", "重办")
SEVERITY_LABELS = {"critical": "紧急", "high": "高", "medium": "中", "low": "低"}


def transform(discrepancies: DataFrame, loop: LoopConfig, run_date: dt.date) -> DataFrame:
    """The night's escalations from gold.discrepancies (see module doc)."""
    days = F.create_map(*[F.lit(x) for kv in loop.deadlines.days.items() for x in kv])
    opens = F.filter("status_history", lambda e: e["status"] == F.lit("open"))
    d = F.lit(run_date)
    active = discrepancies.where(F.col("status").isin("open", "escalated"))
    out = (active
           .withColumn("opened", F.coalesce(F.try_element_at(opens, F.lit(-1))["date"], F.col("first_seen")))
           .withColumn("deadline", F.date_add(F.col("opened"), days[F.col("severity")]))
           .withColumn("overdue_days", F.datediff(d, F.col("deadline")))
           .withColumn("level", F.when(F.col("overdue_days") > F.lit(loop.deadlines.street_after_overdue_days),
                                       F.lit("street")).when(F.col("overdue_days") > 0, F.lit("community")))
           .withColumn("reopen_count", F.greatest(F.size(opens) - 1, F.lit(0)))
           .withColumn("reopened", F.col("reopen_count") > 0)
           .withColumn("run_date", d)
           .where(F.col("level").isNotNull() | F.col("reopened")))
    return out.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in ESCALATIONS.fields])


def supervisor_row(rec: Mapping[str, Any]) -> list[Any]:
    """One escalation as a supervisor's row (ids, places and dates only; no person data)."""
    return [rec.get("discrepancy_id"), rec.get("rule"), SEVERITY_LABELS.get(rec.get("severity"), rec.get("severity")),
            rec.get("street"), rec.get("community"), rec.get("grid_id"), rec.get("house_code"), rec.get("status"),
            str(rec.get("opened") or ""), str(rec.get("deadline") or ""), max(int(rec.get("overdue_days") or 0), 0),
            LEVEL_LABELS.get(rec.get("level") or "", ""), "重办" if rec.get("reopened") else ""]


def supervisor_xlsx(records: Iterable[Mapping[str, Any]], title: str, run_date: dt.date) -> bytes:
    """A supervisor's overdue list: every text a safe string cell, most overdue first."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    rows = sorted(records, key=lambda r: (-(r.get("overdue_days") or 0), str(r.get("discrepancy_id"))))
    wb = Workbook()
    ws = wb.active
    ws.title = sheet_title(title)
    for c, h in enumerate(SUPERVISOR_HEADERS, start=1):
        set_text_cell(ws.cell(row=1, column=c), h)
        ws.cell(row=1, column=c).font = Font(bold=True)
    for r, rec in enumerate(rows, start=2):
        for c, value in enumerate(supervisor_row(rec), start=1):
            if isinstance(value, int):
                ws.cell(row=r, column=c).value = value
            else:
                set_text_cell(ws.cell(row=r, column=c), value)
    ws.freeze_panes = "A2"
    wb.properties.creator = "gridlake"
    return workbook_bytes(wb, dt.datetime.combine(run_date, dt.time()))


def write_supervisor_lists(records: list[Mapping[str, Any]], night_dir: Path, run_date: dt.date) -> dict[str, Any]:
    """Write ``supervisors/community/<street>/<community>.xlsx`` and ``supervisors/street/<street>.xlsx``.

    Overdue cases only (level set); a community list holds its overdue cases, a street list the ones
    escalated to the street. Returns counts per street for the notifications.
    """
    from jobs.gold.exports import ensure_dir, write_if_changed

    root = night_dir / "supervisors"
    overdue = [r for r in records if r.get("level")]
    files: list[str] = []
    key_c = lambda r: (str(r.get("street") or ""), str(r.get("community") or ""))  # noqa: E731
    for (street, community), group in itertools.groupby(sorted(overdue, key=key_c), key=key_c):
        folder = root / "community" / safe_stem(street, "未知街道")
        ensure_dir(folder, night_dir)
        path = folder / f"{safe_stem(community, '未知社区')}.xlsx"
        write_if_changed(path, supervisor_xlsx(group, community or "社区", run_date))
        files.append(path.relative_to(night_dir).as_posix())
    street_counts: dict[str, dict[str, int]] = {}
    for r in records:
        c = street_counts.setdefault(str(r.get("street") or ""), {"overdue": 0, "community": 0, "street": 0,
                                                                  "reopened": 0})
        level = r.get("level")
        if level:
            c["overdue"] += 1
            c[level] += 1
        c["reopened"] += 1 if r.get("reopened") else 0
    key_s = lambda r: str(r.get("street") or "")  # noqa: E731
    for street, group in itertools.groupby(sorted([r for r in overdue if r.get("level") == "street"], key=key_s),
                                           key=key_s):
        folder = root / "street"
        ensure_dir(folder, night_dir)
        path = folder / f"{safe_stem(street, '未知街道')}.xlsx"
        write_if_changed(path, supervisor_xlsx(group, street or "街道", run_date))
        files.append(path.relative_to(night_dir).as_posix())
    return {"files": sorted(files), "streets": street_counts}
