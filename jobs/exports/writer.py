"""Officers' exports: tonight's follow-up list, one grid per file (DESIGN.md section 3 "exports").

``run(ctx)`` reads ``gold.followups`` for the night and writes
``exports/<date>/<street>/<grid_id>.xlsx`` and ``.csv`` (UTF-8 with BOM, for WPS and
Excel) plus ``exports/<date>/index.json``. Only masked personal data leaves the lake;
evidence is shown by department category only (公安/调解/安全生产/计生), never details.

Every delivered text goes through :func:`gridlake.cells.safe_text` (OWASP CSV injection: a
text starting with ``= + - @``, tab or CR is quoted; control characters removed) and is
written as a string cell. The list is also the officer's return form: the input columns
(核查结果 with a dropdown of the configured outcomes, 核查时间, 核查后房屋编码, 备注) are the
only unlocked cells, and a hidden 校验码 column holds a checksum of each row's read-only
columns so the next night can tell a row edited outside the input columns
(:func:`row_checksum`). One grid's failure never stops the others (recorded in
``index.json`` without its message), and names that clean to the same file name never
share a file (:func:`gridlake.cells.safe_stem`).

Files are written to a temporary name in the target folder and ``os.replace``-d, so a
half-written file is never picked up. The bytes are deterministic (workbook
properties and zip entry times are the run date), and a file whose content is already
identical is left alone, so a rerun of a night changes nothing.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import hashlib
import io as _io
import itertools
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.cells import safe_stem, safe_text, set_text_cell, sheet_title, workbook_bytes
from gridlake.errors import PrivacyError
from gridlake.faults import fault_point
from gridlake.permissions import TMP_SUFFIX, ensure_dir, write_if_changed
from schemas.vocab import ENFORCEMENT_SOURCES

if TYPE_CHECKING:
    from gridlake.context import RunContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportColumn:
    """One column of an officer's list: gold field, Chinese header, width, stored as text."""

    field: str
    header: str
    width: int
    text: bool = True


# Order is the officer's column order. 问题编号, 规则 and 房屋编码 are read back by the
# field-check simulator: keep those headers exactly.
COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("rank", "排名", 6, text=False),
    ExportColumn("discrepancy_id", "问题编号", 20),
    ExportColumn("rule", "规则", 6),
    ExportColumn("rule_title", "问题类型", 28),
    ExportColumn("house_code", "房屋编码", 22),
    ExportColumn("address", "地址", 40),
    ExportColumn("priority", "优先级", 8, text=False),
    ExportColumn("reason_codes", "原因", 30),
    ExportColumn("evidence_categories", "证据来源", 18),
    ExportColumn("masked_name", "人员(脱敏)", 12),
    ExportColumn("masked_id", "身份证号(脱敏)", 22),
    ExportColumn("masked_phone", "电话(脱敏)", 15),
    ExportColumn("is_new", "新增", 6),
    ExportColumn("due_date", "截止日期", 12),
    ExportColumn("status", "状态", 10),
    ExportColumn("grid_id", "网格编号", 14),
    ExportColumn("officer_id", "网格员编号", 12),
)
# The officer's input columns (the return form), then the hidden checksum of the read-only ones.
INPUT_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("outcome", "核查结果", 12),
    ExportColumn("checked_at", "核查时间", 18),
    ExportColumn("new_house_code", "核查后房屋编码", 22),
    ExportColumn("note", "备注", 30),
)
CHECKSUM = ExportColumn("row_checksum", "校验码", 18)
# Read-only fields covered by the checksum: the case's identity and description (numbers and dates
# that spreadsheets reformat on saving are left out).
CHECKSUM_FIELDS = ("discrepancy_id", "grid_id", "rule", "rule_title", "house_code", "address",
                   "masked_name", "masked_id", "masked_phone")
ALL_COLUMNS: tuple[ExportColumn, ...] = (*COLUMNS, *INPUT_COLUMNS, CHECKSUM)
HEADERS: tuple[str, ...] = tuple(c.header for c in ALL_COLUMNS)

# Fields read from gold.followups besides the displayed ones.
KEY_FIELDS = ("street", "community", "grid_id", "officer_id")

# Evidence categories an officer may see: the four enforcement departments plus the
# registers the other rules draw on. Anything else is dropped (never shown).
EVIDENCE_LABELS: dict[str, str] = {
    **ENFORCEMENT_SOURCES,
    "rentals": "租赁登记",
    "declarations": "自主申报",
    "housing": "房屋登记",
}
ALLOWED_EVIDENCE = frozenset(EVIDENCE_LABELS.values())

STATUS_LABELS = {
    "open": "待核查",
    "escalated": "已升级",
    "confirmed": "属实",
    "resolved": "已整改",
    "refuted": "不属实",
    "reopened": "重新打开",
}

# Reason codes of jobs.gold.rules, in words an officer reads; an unknown code is shown as is.
REASON_LABELS = {
    "ACTIVE_RENTAL": "有效租赁登记",
    "NO_DECLARATION": "无人申报",
    "NO_TENANT_DECLARATION": "承租人未申报",
    "GRACE_EXPIRED": "已过申报宽限期",
    "TENANT_DECLARED": "有租户申报",
    "NO_ACTIVE_RENTAL": "无有效租赁登记",
    "OVER_AREA_CAPACITY": "超过面积容量",
    "OVER_RENTAL_TENANTS": "超过租赁登记人数",
    "PERSON_IN_ENFORCEMENT": "执法记录涉及人员",
    "NOT_DECLARED": "未申报",
    "DECLARED_ELSEWHERE": "申报在其他房屋",
    "DECLARATION_LINKED_CHECKSUM_FAILED": "申报身份证号校验未通过(经姓名电话房屋关联)",
    "ADDRESS_UNRESOLVED": "地址无法匹配",
    "HOUSE_CODE_UNKNOWN": "房屋编码不存在",
    "HOUSE_DEMOLISHED": "房屋已拆除",
    "ENF_POLICE": "公安记录",
    "ENF_MEDIATION": "调解记录",
    "ENF_SAFETY": "安全生产记录",
    "ENF_FAMILY_PLANNING": "计生记录",
    "ESCALATED": "逾期升级",
    "REOPENED": "新证据重新打开",
}

NEW_MARK = "新"

_FULL_ID = re.compile(r"\d{15}(\d{2}[\dXx])?")
_FULL_PHONE = re.compile(r"(\+?86)?1\d{10}")


# --- values -------------------------------------------------------------------------
def safe_name(value: Any, default: str) -> str:
    """A path component from a street name or grid id: unique per value, at most 255 bytes with extension."""
    return safe_stem(value, default)


def row_checksum(values: Sequence[Any]) -> str:
    """Checksum of a row's read-only values (:data:`CHECKSUM_FIELDS` order, as shown in the file).

    SHA-256 over the values stripped of spaces and joined by U+001F, first 16 hex digits; the same
    expression in Spark is :func:`jobs.silver.verifications.checksum_column`.
    """
    text = "\x1f".join(("" if v is None else str(v)).strip(" ") for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in re.split(r"[;,，、|]", value) if p.strip()]
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


def evidence_display(value: Any) -> str:
    """Department categories only, in a fixed order; details and unknown labels are dropped."""
    labels = {EVIDENCE_LABELS.get(v, v) for v in _as_list(value)}
    order = list(EVIDENCE_LABELS.values())
    return "、".join(lab for lab in order if lab in labels)


def _date_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def check_masked(record: Mapping[str, Any]) -> None:
    """Refuse to export a value that looks like a full ID number or phone (PIPL: masked only)."""
    masked_id = str(record.get("masked_id") or "").replace(" ", "")
    if masked_id and _FULL_ID.fullmatch(masked_id):
        raise PrivacyError(f"followup {record.get('discrepancy_id')}: an unmasked ID number would be exported")
    phone = re.sub(r"[\s-]", "", str(record.get("masked_phone") or ""))
    if phone and _FULL_PHONE.fullmatch(phone):
        raise PrivacyError(f"followup {record.get('discrepancy_id')}: an unmasked phone number would be exported")
    name = str(record.get("masked_name") or "")
    if len(name) >= 2 and "*" not in name:
        raise PrivacyError(f"followup {record.get('discrepancy_id')}: an unmasked name would be exported")


def display_row(record: Mapping[str, Any]) -> list[Any]:
    """One follow-up as the officer's row (all columns of :data:`HEADERS`).

    Numbers for rank/priority; every text made safe (:func:`gridlake.cells.safe_text`); the input
    columns empty; the checksum of the read-only columns last.
    """
    check_masked(record)
    out: list[Any] = []
    for col in COLUMNS:
        value = record.get(col.field)
        if col.field == "rank":
            out.append(int(value) if value is not None else None)
        elif col.field == "priority":
            out.append(round(float(value), 2) if value is not None else None)
        elif col.field == "reason_codes":
            out.append("、".join(REASON_LABELS.get(code, code) for code in _as_list(value)))
        elif col.field == "evidence_categories":
            out.append(evidence_display(value))
        elif col.field == "is_new":
            out.append(NEW_MARK if value else "")
        elif col.field == "due_date":
            out.append(_date_text(value))
        elif col.field == "status":
            out.append(STATUS_LABELS.get(str(value), str(value)) if value is not None else "")
        else:
            out.append(safe_text(value))
    out = [safe_text(v) if isinstance(v, str) else v for v in out]
    shown = dict(zip((c.field for c in COLUMNS), out, strict=True))
    out += ["" for _ in INPUT_COLUMNS]
    out.append(row_checksum([shown[f] for f in CHECKSUM_FIELDS]))
    return out


def _sort_key(record: Mapping[str, Any]) -> tuple:
    rank = record.get("rank")
    priority = record.get("priority")
    return (
        rank if rank is not None else 1 << 30,
        -(priority if priority is not None else 0.0),
        str(record.get("discrepancy_id") or ""),
    )


# --- file formats -------------------------------------------------------------------
def xlsx_bytes(rows: Sequence[Sequence[Any]], sheet_name: str, run_date: dt.date,
               outcomes: Sequence[str] | None = None) -> bytes:
    """The officer's workbook (the return form) as deterministic bytes.

    Header frozen (A2), auto filter, column widths, every text a string cell of format ``@``
    (never a formula), new rows highlighted; 核查结果 a dropdown of ``outcomes`` (Excel data
    validation, list); the sheet protected without a password with only the input cells unlocked;
    the checksum column hidden.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill, Protection
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    if outcomes is None:
        from gridlake.loop_config import load_loop

        outcomes = load_loop().labels
    stamp = dt.datetime.combine(run_date, dt.time())
    wb = Workbook()
    ws = wb.active
    ws.title = sheet_title(sheet_name)
    header_font = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    input_fill = PatternFill("solid", fgColor="E2EFDA")
    new_fill = PatternFill("solid", fgColor="FFF2CC")
    unlocked = Protection(locked=False)
    inputs = {c.header for c in INPUT_COLUMNS}
    for idx, header in enumerate(HEADERS, start=1):
        cell = ws.cell(row=1, column=idx)
        set_text_cell(cell, header)
        cell.font = header_font
        cell.fill = input_fill if header in inputs else header_fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
    new_col = HEADERS.index("新增")
    for r, row in enumerate(rows, start=2):
        for idx, (col, value) in enumerate(zip(ALL_COLUMNS, row, strict=True), start=1):
            cell = ws.cell(row=r, column=idx)
            if col.text:
                set_text_cell(cell, value)
            else:
                cell.value = value
                if col.field == "priority":
                    cell.number_format = "0.00"
            if col.header in inputs:
                cell.protection = unlocked
                cell.fill = input_fill
            elif row[new_col]:
                cell.fill = new_fill
    last_row = max(len(rows) + 1, 2)
    for idx, col in enumerate(ALL_COLUMNS, start=1):
        letter = get_column_letter(idx)
        ws.column_dimensions[letter].width = col.width
        if col.header in inputs and not rows:
            ws.cell(row=2, column=idx).protection = unlocked
    outcome_letter = get_column_letter(HEADERS.index("核查结果") + 1)
    dv = DataValidation(type="list", formula1='"' + ",".join(outcomes) + '"', allow_blank=True,
                        showDropDown=False, showErrorMessage=True, errorTitle="核查结果",
                        error="请从下拉列表中选择核查结果", promptTitle="核查结果", prompt="请选择")
    dv.add(f"{outcome_letter}2:{outcome_letter}{last_row}")
    ws.add_data_validation(dv)
    ws.column_dimensions[get_column_letter(len(ALL_COLUMNS))].hidden = True
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(ALL_COLUMNS))}{max(ws.max_row, 1)}"
    ws.protection.sheet = True  # no password: a guard against slips, not a lock
    ws.protection.autoFilter = False
    ws.protection.sort = False
    ws.protection.formatColumns = False
    props = wb.properties
    props.creator = "gridlake"
    props.lastModifiedBy = "gridlake"
    props.title = safe_text(f"网格核查清单 {sheet_name} {run_date.isoformat()}")
    props.created = stamp
    props.modified = stamp

    return workbook_bytes(wb, stamp)


def csv_bytes(rows: Sequence[Sequence[Any]]) -> bytes:
    """The same list as CSV: UTF-8 with BOM, CRLF line ends (WPS/Excel open it correctly)."""
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in rows:  # texts are safe already (display_row); numbers are not formula triggers
        writer.writerow(["" if v is None else (safe_text(v) if isinstance(v, str) else v) for v in row])
    return buf.getvalue().encode("utf-8-sig")


# --- atomic, idempotent writes ---------------------------------------------------------


# --- the night's exports ---------------------------------------------------------------
@dataclass
class _Names:
    """File names handed out tonight: distinct values never share a directory or a file name."""

    taken: dict[str, str]

    def claim(self, parent: str, value: str, default: str) -> str:
        """A stem for ``value`` under ``parent`` no other value holds (case-insensitively)."""
        stem = safe_name(value, default)
        n = 1
        while self.taken.setdefault(f"{parent}/{stem.casefold()}", value) != value:
            n += 1  # a genuine name equal to another's disambiguated one: hash again, deterministically
            stem = safe_stem(f"{value}\x00{n}", default)
        return stem


def grid_rows(records: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[list[Any]]]:
    """One grid's follow-ups in list order and their displayed rows (:func:`display_row`)."""
    recs = sorted(records, key=_sort_key)
    return recs, [display_row(r) for r in recs]


def write_grid(
    night_dir: Path, street: str, grid_id: str, recs: Sequence[Mapping[str, Any]], rows: Sequence[Sequence[Any]],
    xlsx: bytes, names: _Names | None = None,
) -> dict[str, Any]:
    """Write one grid's XLSX (``xlsx``: :func:`xlsx_bytes` of ``rows``) and CSV under ``night_dir/<street>/``;
    return its index entry. ``recs, rows``: :func:`grid_rows`."""
    names = names or _Names({})
    street_stem = names.claim("", street, "未知街道")
    street_dir = night_dir / street_stem
    ensure_dir(street_dir, night_dir)
    stem = names.claim(street_stem, grid_id, "unknown_grid")
    written = 0
    entry: dict[str, Any] = {
        "street": street,
        "community": next((r.get("community") for r in recs if r.get("community")), None),
        "grid_id": grid_id,
        "officer_id": next((r.get("officer_id") for r in recs if r.get("officer_id")), None),
        "rows": len(rows),
        "new_rows": sum(1 for r in recs if r.get("is_new")),
    }
    for kind, data in (("xlsx", xlsx), ("csv", csv_bytes(rows))):
        path = street_dir / f"{stem}.{kind}"
        written += write_if_changed(path, data)
        entry[kind] = path.relative_to(night_dir).as_posix()
        entry[f"{kind}_sha256"] = hashlib.sha256(data).hexdigest()
    entry["_written"] = written
    return entry


def _grid_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return (str(record.get("street") or ""), str(record.get("grid_id") or ""))


def failure_reason(exc: BaseException) -> str:
    """A grid's failure as recorded: the exception's class only (its message may quote a value)."""
    return f"{type(exc).__module__}.{type(exc).__name__}" if not isinstance(exc, PrivacyError) else "PrivacyError"


def write_exports(records: Iterable[Mapping[str, Any]], exports_root: Path, run_date: dt.date,
                  outcomes: Sequence[str] | None = None, processes: int = 1,
                  processes_min_grids: int = 0) -> dict[str, Any]:
    """Write the night's files from follow-up records sorted by (street, grid_id).

    Consumes ``records`` as a stream, holding a few grids' lists at a time. A grid that fails (a
    value refused, a file system error) is recorded under ``failed`` with its exception class
    only, and the other grids are written. Files of the night's folder that no longer belong to
    the night (an earlier attempt, a failed grid) are removed. From ``processes_min_grids`` grids on,
    up to ``processes`` worker processes build the workbooks (:mod:`jobs.exports.workbooks`); the files,
    their order of writing and the index are the same. Returns the manifest stats.
    """
    from jobs.exports.workbooks import Workbooks

    if outcomes is None:
        from gridlake.loop_config import load_loop

        outcomes = load_loop().labels
    exports_root = Path(exports_root)
    night_dir = exports_root / run_date.isoformat()
    ensure_dir(night_dir, exports_root)
    entries: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    names = _Names({})
    seen: set[tuple[str, str]] = set()
    pending: collections.deque = collections.deque()  # (grid key, recs, rows, workbook job | the grid's error)

    def finish(books: Workbooks) -> None:
        key, recs, rows, job = pending.popleft()
        try:
            if isinstance(job, BaseException):
                raise job
            entries.append(write_grid(night_dir, key[0], key[1], recs, rows, books.result(job), names))
        except Exception as exc:  # noqa: BLE001 - one grid's failure never stops the others
            failed.append({"street": key[0], "grid_id": key[1], "error": failure_reason(exc)})
            log.error("exports %s: grid %s not written (%s)", run_date, safe_stem(key[1], "?"), failure_reason(exc))
        fault_point("exports.grid")  # some grids written, the others and index.json not

    with Workbooks(xlsx_bytes, processes, processes_min_grids) as books:
        for key, group in itertools.groupby(records, key=_grid_key):
            if key in seen:
                raise ValueError(f"follow-ups are not sorted by street, grid_id (grid {safe_stem(key[1], '?')} seen twice)")
            seen.add(key)
            try:
                recs, rows = grid_rows(group)
                pending.append((key, recs, rows, books.submit(rows, key[1], run_date, outcomes)))
            except Exception as exc:  # noqa: BLE001 - recorded in its turn by finish()
                pending.append((key, None, None, exc))
            while len(pending) > books.window:
                finish(books)
        while pending:
            finish(books)
    written = sum(e.pop("_written") for e in entries)
    keep = {e["xlsx"] for e in entries} | {e["csv"] for e in entries}
    removed = _remove_stale(night_dir, keep)
    index = {
        "run_date": run_date.isoformat(),
        "grids": len(entries),
        "rows": sum(e["rows"] for e in entries),
        "new_rows": sum(e["new_rows"] for e in entries),
        "files": entries,
        "failed": failed,
    }
    index_bytes = (json.dumps(index, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
    written += write_if_changed(night_dir / "index.json", index_bytes)
    stats = {
        "grids": index["grids"],
        "files": 2 * index["grids"],
        "rows": index["rows"],
        "new_rows": index["new_rows"],
        "files_written": written,
        "stale_removed": removed,
        "failed_grids": len(failed),
        "index": str(night_dir / "index.json"),
    }
    log.info("exports %s: %d grids, %d rows, %d files written, %d grids failed", run_date, stats["grids"],
             stats["rows"], written, len(failed))
    return stats


def _remove_stale(night_dir: Path, keep: set[str]) -> int:
    removed = 0
    for path in sorted(night_dir.rglob("*")):
        rel = path.relative_to(night_dir).as_posix()
        if rel.startswith("supervisors/"):
            continue  # jobs.gold.escalations writes those
        if path.is_file() and path.suffix in (".xlsx", ".csv") and rel not in keep:
            path.unlink()
            removed += 1
        elif path.is_file() and path.name.endswith(TMP_SUFFIX):
            path.unlink()  # left by a crashed earlier attempt
    for path in sorted(night_dir.iterdir()):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed


def _followup_records(ctx: RunContext) -> Iterator[dict[str, Any]]:
    """The night's follow-ups sorted by street, grid, rank, streamed partition by partition."""
    from pyspark.sql import functions as F

    from gridlake import io

    if not io.table_exists(ctx.spark, ctx.settings, "gold", "followups"):
        log.warning("gold.followups does not exist yet: no exports for %s", ctx.date_str)
        return iter(())
    df = io.read_table(ctx.spark, ctx.settings, "gold", "followups")
    fields = [*KEY_FIELDS, *(c.field for c in COLUMNS)]
    missing = [f for f in fields if f not in df.columns]
    if missing:
        raise ValueError(f"gold.followups lacks column(s) {', '.join(missing)}")
    night = (
        df.where(F.col("run_date") == F.lit(ctx.run_date))
        .select(*fields)
        .fillna({"street": "", "grid_id": ""})
        .orderBy("street", "grid_id", "rank", F.col("priority").desc(), "discrepancy_id")
    )
    # One partition at a time on the driver; each grid's list is small (capacity ~15).
    return (row.asDict(recursive=True) for row in night.toLocalIterator(prefetchPartitions=False))


def run(ctx: RunContext) -> dict[str, Any]:
    """Stage "exports": tonight's per-grid lists, ``index.json``, escalations and the supervisors' lists."""
    wb = ctx.settings.workbooks
    stats = write_exports(_followup_records(ctx), ctx.settings.exports, ctx.run_date,
                          processes=wb.processes, processes_min_grids=wb.processes_min_grids)
    ctx.manifest.doc.setdefault("links", {})["exports_index"] = stats["index"]
    stats["supervisors"] = run_escalations(ctx)
    from gridlake.notifications import load_notifications, notify_streets

    cfg = load_notifications()
    if cfg.street_supervisors:  # counts and links only; a failed mail is recorded, the night goes on
        stats["notifications"] = notify_streets(stats["supervisors"], ctx.run_date, cfg)
    return stats


def run_escalations(ctx: RunContext) -> dict[str, Any]:
    """Publish the night's slice of gold.escalations and write the supervisors' overdue lists."""
    from gridlake import io
    from gridlake.loop_config import load_loop
    from jobs.gold import escalations

    if not io.table_exists(ctx.spark, ctx.settings, "gold", "discrepancies"):
        return {"files": [], "streets": {}}
    disc = io.read_table(ctx.spark, ctx.settings, "gold", "discrepancies")
    esc = escalations.transform(disc, load_loop(), ctx.run_date).localCheckpoint()
    where = f"run_date = DATE'{ctx.date_str}'"
    exists = io.table_exists(ctx.spark, ctx.settings, "gold", "escalations")
    version = io.overwrite_if_changed(esc, ctx.settings, "gold", "escalations",
                                      replace_where=where if exists else None, partition_by=("run_date",))
    version_m = _publish_supervision_metrics(ctx, disc, esc)
    records = [r.asDict() for r in esc.collect()]  # overdue or reopened cases only: small
    night_dir = Path(ctx.settings.exports) / ctx.date_str
    out = escalations.write_supervisor_lists(records, night_dir, ctx.run_date)
    out["table_version"] = version
    out["metrics_table_version"] = version_m
    out["corrections"] = correction_stats(ctx, disc)
    out["overdue"] = sum(1 for r in records if r.get("level"))
    out["reopened"] = sum(1 for r in records if r.get("reopened"))
    return out


def _publish_supervision_metrics(ctx: RunContext, disc: Any, esc: Any) -> int:
    """The night's slice of gold.supervision_metrics (officers from the night's gold.followups)."""
    from gridlake import io
    from gridlake.loop_config import load_loop
    from jobs.gold import supervision_metrics

    loop = load_loop()
    if io.table_exists(ctx.spark, ctx.settings, "gold", "followups"):
        f = io.read_table(ctx.spark, ctx.settings, "gold", "followups")
        officers = f.where(f["run_date"] == ctx.run_date).select("grid_id", "officer_id").where("officer_id IS NOT NULL")
    else:
        officers = ctx.spark.createDataFrame([], "grid_id string, officer_id string")
    metrics = supervision_metrics.transform(disc, esc, officers, loop, ctx.run_date).localCheckpoint()
    where = f"run_date = DATE'{ctx.date_str}'"
    exists = io.table_exists(ctx.spark, ctx.settings, "gold", "supervision_metrics")
    return io.overwrite_if_changed(metrics, ctx.settings, "gold", "supervision_metrics",
                                   replace_where=where if exists else None, partition_by=("run_date",))


def correction_stats(ctx: RunContext, disc: Any) -> dict[str, Any]:
    """R6 cases closed by an officer's correction (an alias) and how many came back (see :func:`correction_figure`)."""
    return correction_figure(ctx.spark, ctx.settings, disc)


def correction_figure(spark: Any, settings: Any, disc: Any) -> dict[str, Any]:
    """``{cases_corrected, came_back, held_share}`` over gold.address_aliases and ``disc`` (gold.discrepancies).

    A corrected case *came back* when it is active again, or when the rule detected it again on a night
    after the correction was checked (an ``address_corrected`` case is closed for good, so a correction the
    alias does not carry shows as a later ``last_seen``). ``held_share`` is the share of corrected cases that
    did not come back; None before any correction."""
    from pyspark.sql import functions as F

    from gridlake import io

    if not io.table_exists(spark, settings, "gold", "address_aliases"):
        return {"cases_corrected": 0, "came_back": 0, "held_share": None}
    cases = io.read_table(spark, settings, "gold", "address_aliases").select("discrepancy_id").distinct()
    back = F.col("status").isin("open", "escalated")
    if {"detected", "last_seen", "verified_at"} <= set(disc.columns):
        again = F.col("detected") & (F.col("last_seen") > F.to_date("verified_at"))
        back = back | F.coalesce(again, F.lit(False))
    row = (disc.join(cases, "discrepancy_id", "inner")
           .agg(F.count(F.lit(1)).alias("n"), F.sum(back.cast("int")).alias("back"))
           .first())
    n, back = int(row["n"] or 0), int(row["back"] or 0)
    return {"cases_corrected": n, "came_back": back, "held_share": round((n - back) / n, 4) if n else None}
