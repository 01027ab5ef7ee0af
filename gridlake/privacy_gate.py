"""The privacy scan as a gate: gold tables and tonight's exports are scanned *before* they are published.

- Gold: :meth:`gridlake.pipeline.RunContext.audit` calls :func:`check_gold_frame` on every gold
  frame right before it is committed (after its quality suite): the frame's values are scanned
  with the rules of :mod:`gridlake.privacy_scan` (checksum-valid ID numbers that are not house
  codes, the raw phones and full names silver holds).
- Exports: the ``exports`` stage (:func:`jobs.exports.runner.run`) writes into a private staging
  folder, scans every file written with :func:`gridlake.privacy_scan.scan`, and stops publication
  through :func:`stop_publication` on a hit.

A hit stops publication: the stage raises :class:`gridlake.errors.PrivacyError`, the manifest
records the failure, and the alert hooks get a record naming table/column (or file) and kind
with counts, never a value. Staged exports holding a hit are deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from gridlake.errors import PrivacyError
from gridlake.privacy_scan import Finding, KnownPII, known_pii_from_silver, scan_text
from gridlake.sanitise import sanitise_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from gridlake.context import RunContext

log = logging.getLogger(__name__)

_KNOWN_KEY = "privacy_gate_known"
CHUNK_ROWS = 20_000       # rows a value-by-value pass (after a hit) joins per column before scanning them
CHUNK_VALUES = 100_000    # distinct values the first pass joins into one text


def known_pii(ctx: RunContext) -> KnownPII:
    """The raw phones, names and house codes silver holds, read once per night (kept in ``ctx.extras``)."""
    known = ctx.extras.get(_KNOWN_KEY)
    if known is None:
        known = known_pii_from_silver(ctx.settings)
        ctx.extras[_KNOWN_KEY] = known
    return known


def scan_frame(df: DataFrame, known: KnownPII, label: str) -> list[Finding]:
    """Findings per column (``path`` = ``<label>.<column>``) in the values of ``df``.

    First the frame's distinct text values, as texts of up to :data:`CHUNK_VALUES` values each that
    Spark joins by a line break (no pattern matches across one, so this finds a hit exactly when some
    value holds one): on a clean frame, the usual case, Python reads a few long texts instead of every
    row, and a value that many rows repeat (a rule's explanation, a community, a status) once. Only
    on a hit is the frame read again value by value, for the exact count per column that the alert
    gives."""
    from pyspark.sql.types import ArrayType, MapType, StringType, StructType

    names = known.name_pattern()
    # only text can carry an ID number, a phone or a name: numbers, dates and flags are not read
    fields = [f for f in df.schema.fields if isinstance(f.dataType, (StringType, ArrayType, MapType, StructType))]
    if not fields:
        return []
    for chunk in _chunk_texts(df, fields).toLocalIterator(prefetchPartitions=False):
        if chunk["text"] and scan_text(chunk["text"], label, known, names):
            return _scan_by_column(df, [f.name for f in fields], known, names, label)
    return []


def _chunk_texts(df: DataFrame, fields: list[Any]) -> DataFrame:
    """One ``text`` per run of at most :data:`CHUNK_VALUES` distinct values of a partition: the distinct
    non-null text values of ``fields`` (of every column together), each once.

    Spark drops the repeats before its exchange (a partial aggregation), so fewer bytes are shuffled
    than the rows' joined texts were; a district's ``gold.house_resolution`` holds 359 M characters
    of text in its rows and 54 M in its distinct values."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    values = [df[f"`{f.name}`"] if isinstance(f.dataType, StringType) else df[f"`{f.name}`"].cast("string")
              for f in fields]
    distinct = df.select(F.explode(F.array(*values)).alias("t")).where(F.col("t").isNotNull()).distinct()
    chunks = distinct.select("t", F.floor(F.monotonically_increasing_id() / CHUNK_VALUES).alias("chunk"))
    return chunks.groupBy("chunk").agg(F.concat_ws("\n", F.collect_list("t")).alias("text"))


def _scan_by_column(df: DataFrame, columns: list[str], known: KnownPII, names: Any, label: str) -> list[Finding]:
    """Findings per column, the values streamed to the driver row by row."""
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


def stop_publication(ctx: RunContext, what: str, findings: list[Finding]) -> None:
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
        stop_publication(ctx, f"gold.{table}", findings)
    ctx.manifest.doc.setdefault("privacy_gate", {})[f"gold.{table}"] = {"passed": True, "findings": []}
    return {"passed": True}
