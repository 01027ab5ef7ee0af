"""Part of stage ``matching``: gold.house_resolution published apart from its computation.

:func:`jobs.matching.runner.resolve_night` resolves the night's records and returns a :class:`ResolvedNight`;
its :meth:`ResolvedNight.publish` audits the rows (quality suite, then the privacy gate), writes them (a
MERGE of the re-linked and gone records on an incremental night, the whole table on a full one), saves the
model's state and counts the methods. The records' houses that person linkage compares
(:meth:`ResolvedNight.house_codes`) are known before that publication: the table as it will be.

So the stage publishes the houses from a second driver thread while person linkage runs in the driver
(pandas, one core; the publication is mostly Spark jobs and a Delta commit, on the other core). Person
linkage publishes its own table only once the houses are published (``ready``): a house resolution that
fails its audit still stops the night before any person is published, as when the two ran one after the
other; with one thread (``spark.stage_threads: 1``, or a fault plan) they still do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

    from gridlake.context import RunContext
    from matching.scoring import FSModel
    from matching.spec import LinkageSpec

log = logging.getLogger(__name__)

T = TypeVar("T")
TABLE = "house_resolution"
KEYS = ["source", "record_id"]
#: what person linkage reads of a record's resolution
HOUSE_CODE_COLUMNS = ["source", "record_id", "house_code"]
STATE_TABLE = "_house_resolution_state"
STATE_SCHEMA = StructType([
    StructField("spec", StringType(), False),
    StructField("fingerprint", StringType(), False),        # spec + matching code
    StructField("model", StringType(), False),              # FSModel.to_state()
    StructField("housing_version", LongType(), False),      # silver.housing version linked against
    StructField("resolution_version", LongType(), False),   # gold.house_resolution version it describes
])


@dataclass
class ResolvedNight:
    """A night's house resolution, computed and not yet published.

    ``mode`` ``full``: ``result`` is the whole table; ``incremental``: ``result`` holds the re-linked records
    (``n_todo``), ``gone`` the keys of records no longer delivered, ``changes`` each record's change
    (``new``, ...), all against ``gold.house_resolution`` at ``resolution_version``."""

    ctx: RunContext
    spec: LinkageSpec
    fingerprint: str
    model: FSModel
    housing_version: int
    resolution_version: int
    mode: str
    result: DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    gone: DataFrame | None = None
    changes: DataFrame | None = None
    previous: DataFrame | None = None
    n_todo: int = 0
    n_gone: int = 0

    def house_codes(self) -> pd.DataFrame:
        """``source, record_id, house_code`` of every record as the table will hold them once published: the
        whole result (full), or the table as the night found it without the gone and re-linked records, plus
        the re-linked ones (incremental: a MERGE by ``KEYS``). Read before :meth:`publish` (which releases
        ``result``)."""
        import pandas as pd

        from gridlake import io

        spark, settings = self.ctx.spark, self.ctx.settings
        if self.mode == "full":
            return self.result.select(*HOUSE_CODE_COLUMNS).toArrow().to_pandas()
        before = io.read_columns(spark, settings, "gold", TABLE, HOUSE_CODE_COLUMNS,
                                 version=self.resolution_version).to_pandas()
        fresh = self.result.select(*HOUSE_CODE_COLUMNS).toArrow().to_pandas()
        replaced = pd.concat([self.gone.toPandas(), fresh[KEYS]]) if self.n_gone else fresh[KEYS]
        kept = before[~pd.MultiIndex.from_frame(before[KEYS]).isin(pd.MultiIndex.from_frame(replaced))]
        return pd.concat([kept, fresh], ignore_index=True)

    def publish_after_codes(self) -> tuple[Callable[[], dict[str, Any]], Callable[[], pd.DataFrame]]:
        """``(publish, codes)``: ``publish()`` collects :meth:`house_codes` first, then publishes; ``codes()`` waits
        for them and returns them (or raises their error). For :func:`beside`: the houses are collected in the
        publication's thread while person linkage reads its mentions in its own (8 s of a district's first
        night, which person linkage waited for before)."""
        collected: Future = Future()

        def publish() -> dict[str, Any]:
            started = time.monotonic()
            try:
                collected.set_result(self.house_codes())
            except BaseException as exc:
                collected.set_exception(exc)
                raise
            self.stats["house_codes_seconds"] = round(time.monotonic() - started, 1)
            return self.publish()

        return publish, collected.result

    def publish(self) -> dict[str, Any]:
        """Audit, write, save the model's state; returns the night's statistics (records, methods, version).

        Releases ``result``. Raises as the audit or the write raise (nothing of the night published then)."""
        from gridlake import io
        from gridlake.faults import fault_window

        ctx, spark, settings = self.ctx, self.ctx.spark, self.ctx.settings
        target = settings.table_path("gold", TABLE)
        started = time.monotonic()
        stats = dict(self.stats)
        parts: dict[str, float] = {}
        mark = started

        def lap(part: str) -> None:
            nonlocal mark
            now = time.monotonic()
            parts[part] = round(now - mark, 1)
            mark = now

        result = self.result
        try:
            if self.mode == "incremental":
                # the rows the MERGE may write audited (quality suite, then the privacy gate, as for every gold
                # table), its volume band on the table's size afterwards: kept rows, less those gone, plus new
                # ones (and the share of records resolved measured on the table as it will be). A night with
                # nothing to re-link or delete (a rerun after its write) publishes nothing and audits nothing:
                # its audit of none would replace the night's recorded audit, and a rerun commits nothing
                if self.n_todo or self.n_gone:
                    new = self.changes.where(F.col("change") == "new").select(*KEYS)
                    after = (io.row_count(spark, settings, "gold", TABLE) - self.n_gone
                             + result.select(*KEYS).join(new, KEYS, "left_semi").count())
                    whole = (self.previous.join(result.select(*KEYS).unionByName(self.gone.select(*KEYS)), KEYS,
                                                "left_anti").select(*result.columns).unionByName(result))
                    ctx.audit("gold", TABLE, result, table_rows=after, whole=whole)
                lap("audit")
                # GRIDLAKE_FAULT=matching.write~file: killed while Spark writes the MERGE, before its commit
                with fault_window("matching.write", target):
                    version = io.upsert_changed(result, settings, "gold", TABLE, KEYS, delete_keys=self.gone)
                stats.update(relinked=self.n_todo)
            else:
                ctx.audit("gold", TABLE, result)  # quality suite, then the privacy gate (every gold table)
                lap("audit")
                # GRIDLAKE_FAULT=matching.write~file: killed while Spark writes the overwrite, before its commit
                with fault_window("matching.write", target):
                    version = io.overwrite_if_changed(result, settings, "gold", TABLE)
            lap("write")
        finally:
            result.unpersist()
        state_df = spark.createDataFrame([(self.spec.name, self.fingerprint, self.model.to_state(),
                                           self.housing_version, version)], STATE_SCHEMA)
        io.overwrite_if_changed(state_df, settings, "gold", STATE_TABLE)
        lap("state")
        counts = {r["method"]: int(r["count"]) for r in
                  io.read_table(spark, settings, "gold", TABLE).groupBy("method").count().collect()}
        lap("counts")
        total = sum(counts.values())
        stats["publish_seconds"] = round(time.monotonic() - started, 1)
        # where the publication's time went (before it, in the same thread, the houses collected for person
        # linkage: house_codes_seconds)
        stats["publish_seconds_by_part"] = parts
        return {"records": total, "methods": counts, "version": version, "mode": self.mode, **stats,
                "resolved_share": round(1 - counts.get("unresolved", 0) / total, 4) if total else None}


def beside(publish: Callable[[], dict[str, Any]], work: Callable[[Callable[[], None]], T],
           threads: int) -> tuple[dict[str, Any], T]:
    """``(publish(), work(ready))``: with ``threads`` > 1 ``publish`` runs in a second driver thread while
    ``work`` runs in this one; ``work`` calls ``ready()`` before it publishes anything of its own, which waits
    for ``publish`` and raises its error. Either way ``publish`` has finished when this returns or raises, and
    its error is raised first (as when it ran first); with one thread ``publish`` runs first, then ``work``."""
    if threads <= 1:
        published = publish()
        return published, work(lambda: None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridlake-publish") as pool:
        future: Future = pool.submit(publish)
        try:
            out = work(lambda: _wait(future))
        except BaseException:
            _wait(future)   # the publication's own error first; else the work's
            raise
        return future.result(), out


def _wait(future: Future) -> None:
    exc = future.exception()   # waits
    if exc is not None:
        raise exc
