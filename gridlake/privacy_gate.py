"""The privacy scan as a gate: gold tables and tonight's exports are scanned *before* they are published.

- Gold: :meth:`gridlake.pipeline.RunContext.audit` calls :func:`check_gold_frame` on every gold
  frame right before it is committed (after its quality suite): the frame's values are scanned
  with the rules of :mod:`gridlake.privacy_scan` (checksum-valid ID numbers that are not house
  codes, the raw phones and full names silver holds).
- Exports: the pipeline's ``exports`` stage is :func:`run_exports`. It runs
  :func:`jobs.gold.exports.run` into a private staging folder (seeded with the night's published
  files, so unchanged files stay unchanged), scans every file written, and only then moves the
  night's folder into place.

A hit stops publication: the stage raises :class:`gridlake.errors.PrivacyError`, the manifest
records the failure, and the alert hooks get a record naming table/column (or file) and kind
with counts, never a value. Staged exports holding a hit are deleted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.config import Settings
from gridlake.errors import PrivacyError
from gridlake.privacy_scan import Finding, KnownPII, known_pii_from_silver, scan, scan_text
from gridlake.runid import safe_run_id
from gridlake.sanitise import sanitise_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from gridlake.pipeline import RunContext

log = logging.getLogger(__name__)

_KNOWN_KEY = "privacy_gate_known"
CHUNK_ROWS = 20_000


def known_pii(ctx: RunContext) -> KnownPII:
    """The raw phones, names and house codes silver holds, read once per night (kept in ``ctx.extras``)."""
    known = ctx.extras.get(_KNOWN_KEY)
    if known is None:
        known = known_pii_from_silver(ctx.settings)
        ctx.extras[_KNOWN_KEY] = known
    return known


def scan_frame(df: DataFrame, known: KnownPII, label: str) -> list[Finding]:
    """Findings per column (``path`` = ``<label>.<column>``) in the values of ``df``, streamed to the driver."""
    from pyspark.sql.types import ArrayType, MapType, StringType, StructType

    names = known.name_pattern()
    # only text can carry an ID number, a phone or a name: numbers, dates and flags are not read
    columns = [f.name for f in df.schema.fields if isinstance(f.dataType, (StringType, ArrayType, MapType, StructType))]
    if not columns:
        return []
    df = df.select(*[df[f"`{c}`"] for c in columns])
    buffers: dict[str, list[str]] = {c: [] for c in columns}
    counts: dict[tuple[str, str], int] = defaultdict(int)

    def flush() -> None:
        for col, values in buffers.items():
            if values:
                for f in scan_text("\n".join(values), f"{label}.{col}", known, names):
                    counts[(f.path, f.kind)] += f.count
                values.clear()

    for i, row in enumerate(df.toLocalIterator(prefetchPartitions=False), 1):
        for col, value in zip(columns, row, strict=True):
            if value is not None:
                buffers[col].append(str(value))
        if i % CHUNK_ROWS == 0:
            flush()
    flush()
    return [Finding(path, kind, n) for (path, kind), n in sorted(counts.items())]


def _summary(findings: list[Finding]) -> list[dict[str, Any]]:
    return [{"where": f.path, "kind": f.kind, "count": f.count} for f in findings]


def _stop(ctx: RunContext, what: str, findings: list[Finding]) -> None:
    """Alert (kinds and counts only) and raise: publication of ``what`` stops."""
    where = "; ".join(f"{f.count} {f.kind} in {f.path}" for f in findings[:20])
    message = sanitise_text(f"privacy gate: raw personal data in {what} ({where}); publication stopped, "
                            "nothing of it was published")
    ctx.manifest.doc.setdefault("privacy_gate", {})[what] = {"passed": False, "findings": _summary(findings)}
    record = {"run_id": ctx.run_id, "night": ctx.date_str, "task_id": f"privacy_gate:{what}", "error": message,
              "findings": _summary(findings), "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    from gridlake.alerts import send_alert

    send_alert(record, ctx.settings)  # the configured alert channels; never raises, the gate's verdict stands
    raise PrivacyError(message)


def check_gold_frame(ctx: RunContext, table: str, df: DataFrame) -> dict[str, Any]:
    """Scan a gold frame about to be published; raise :class:`PrivacyError` on any hit."""
    findings = scan_frame(df, known_pii(ctx), f"gold.{table}")
    if findings:
        _stop(ctx, f"gold.{table}", findings)
    ctx.manifest.doc.setdefault("privacy_gate", {})[f"gold.{table}"] = {"passed": True, "findings": []}
    return {"passed": True}


# --- exports: write to staging, scan, publish --------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StagedSettings(Settings):
    """Settings whose ``exports`` folder is a staging folder (everything else unchanged)."""

    staged_exports: str = ""

    @property
    def exports(self) -> Path:
        return Path(self.staged_exports)


def staging_dir(settings: Settings, run_id: str) -> Path:
    """Where a run's exports are written before the scan: private to the service user."""
    return settings.data / "_staging" / "exports" / safe_run_id(run_id)


def _export_targets(night_dir: Path) -> list[tuple[str, Path]]:
    out = []
    for f in sorted(night_dir.rglob("*")):
        if f.is_file():
            out.append(("xlsx" if f.suffix == ".xlsx" else "text", f))
    return out


def _swap_into_place(staged: Path, final: Path) -> None:
    """Replace ``final`` (a night's folder) by ``staged``: two renames on one file system."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.rename(final, old)
    os.rename(staged, final)
    if old.exists():
        shutil.rmtree(old)


def run_exports(ctx: RunContext) -> dict[str, Any]:
    """Stage ``exports`` with write-audit-publish: stage, scan, then move the night's folder into place."""
    from jobs.gold import exports

    settings = ctx.settings
    root = staging_dir(settings, ctx.run_id)
    if root.exists():
        shutil.rmtree(root)  # an earlier attempt's staging
    root.mkdir(parents=True, mode=0o700)
    final = settings.exports / ctx.date_str
    staged = root / ctx.date_str
    if final.parent.exists():  # a run killed between the two renames of a swap left the old folder
        for left in final.parent.glob(f".{final.name}.old-*"):
            shutil.rmtree(left, ignore_errors=True)
    if final.exists():  # seeded with what is published: unchanged files are not rewritten
        shutil.copytree(final, staged, copy_function=shutil.copy2)
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)}
    staged_ctx = dataclasses.replace(ctx, settings=StagedSettings(**fields, staged_exports=str(root)))
    try:
        stats = exports.run(staged_ctx)
        if not staged.exists():  # nothing to export tonight
            return stats
        report = scan(settings, targets=_export_targets(staged), known=known_pii(ctx))
        for f in report.findings:
            f.path = str(Path(f.path).relative_to(root))
        if report.findings:
            _stop(ctx, f"exports/{ctx.date_str}", report.findings)
        _swap_into_place(staged, final)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # staged files with a hit never stay on disk
    ctx.manifest.doc.setdefault("privacy_gate", {})[f"exports/{ctx.date_str}"] = {
        "passed": True, "files_scanned": report.files_scanned, "findings": []}
    stats["index"] = str(final / "index.json")
    ctx.manifest.doc.setdefault("links", {})["exports_index"] = stats["index"]
    stats["privacy_files_scanned"] = report.files_scanned
    return stats
