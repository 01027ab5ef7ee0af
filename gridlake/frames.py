"""Computing an intermediate frame once, by a query of its own, and keeping it for the queries that follow.

Spark plans lazily: a frame used by several later queries is recomputed inside each, and a stage that
builds its answer from many such frames ends as one plan of hundreds of stages that adaptive execution
re-plans after each one. A persisted frame is computed once, but every later query over it is still
analysed with its whole plan and matched against the cache; on a small frame that planning is most of
the cost. So a frame of at most :data:`LINEAGE_CUT_MAX_ROWS` rows is cut from its lineage (a local
checkpoint: its few blocks go when the frame is garbage-collected, or at once with :func:`release`); a larger
batch (:func:`keep_batch`) stays persisted and is released explicitly. A stage's :class:`Keeper` keeps every
frame as a local checkpoint, on disk only on a large night: there, persisted frames cost gold more planning
than checkpoints (measured below and in docs/speed.md), while silver's and matching's batches did not gain.

Measured on the gold stage alone (a cold process on a tiny district's first night, seed 20141, default
noise model; whole-process timing, 3 paired runs in turn): keeping the rules' shared views and each rule's output this way
took 115.9 s of wall time against 139.3 s (median; ratio 0.83), the same four gold tables. Before, the
rules ran as one plan of 377 stages and 164 jobs (a 2 MB physical plan) inside the lifecycle's checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

LINEAGE_CUT_MAX_ROWS = 200_000


def materialise(df: DataFrame, max_rows: int = LINEAGE_CUT_MAX_ROWS) -> tuple[DataFrame, int]:
    """Compute ``df`` now; return the kept frame and its row count.

    Up to ``max_rows`` rows the result is a local checkpoint (no lineage); above, ``df`` persisted, which
    the caller releases with ``unpersist()`` (harmless on a checkpoint)."""
    frame = df.persist()
    rows = frame.count()
    return cut_if_small(frame, rows, max_rows), rows


def cut_if_small(frame: DataFrame, rows: int, max_rows: int = LINEAGE_CUT_MAX_ROWS) -> DataFrame:
    """A persisted ``frame`` of ``rows`` rows: as a local checkpoint (released) up to ``max_rows``, else as is."""
    if rows > max_rows:
        return frame
    small = frame.localCheckpoint(eager=True)
    frame.unpersist()
    return small


def keep_batch(df: DataFrame, rows: int, max_rows: int = LINEAGE_CUT_MAX_ROWS, disk_only: bool = False) -> DataFrame:
    """A frame of about ``rows`` rows that later queries of the stage reuse.

    Up to ``max_rows`` rows it is computed now as a local checkpoint, so the queries after it plan over a
    scan of its blocks, not over the plan that made it (silver's typing plan of a source is hundreds of
    expressions; persisted, every query over the batch re-analysed it and matched it against the cache).
    Above, it is persisted (memory and disk; on disk only with ``disk_only``) and computed by its first query;
    ``unpersist()`` releases either.
    """
    if rows <= max_rows:
        return df.localCheckpoint(eager=True)
    from pyspark import StorageLevel

    return df.persist(StorageLevel.DISK_ONLY if disk_only else StorageLevel.MEMORY_AND_DISK)


class Keeper:
    """Frames kept for one stage, released together by :meth:`release` (use as a context manager).

    Every kept frame is a local checkpoint computed at once: the queries after it plan over a scan of its
    blocks. ``cut_lineage`` is decided once for the stage from the size of its night (a row count per frame
    would cost a query per frame): true, the blocks are in memory, then on disk (Spark's default for a
    checkpoint); false (a large night), on disk only. :meth:`release` removes the blocks at once.

    A large night's frames were persisted (``persist(DISK_ONLY)`` and a count) until 2026-12: each
    ``persist`` planned its query for the cache, and every later query was matched against every kept
    frame's plan. The gold stage alone on a district's incremental night took 190.0-205.1 s with
    checkpoints against 218.2-253.8 s persisted, the same four tables (docs/speed.md)."""

    def __init__(self, cut_lineage: bool) -> None:
        self.cut_lineage = cut_lineage
        self.frames: list[DataFrame] = []

    def keep(self, df: DataFrame) -> DataFrame:
        if self.cut_lineage:
            frame = df.localCheckpoint(eager=True)
        else:
            # on disk: a frame kept in memory holds storage memory that execution cannot take back (Spark
            # evicts cached blocks only above spark.memory.storageFraction), and a district night's shared
            # views then left a sort no memory at all (SparkOutOfMemoryError in gold, driver_memory 4g)
            from pyspark import StorageLevel

            frame = df.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
        self.frames.append(frame)
        return frame

    def release(self) -> None:
        for frame in self.frames:
            release(frame)
        self.frames.clear()

    def __enter__(self) -> Keeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def checkpoint_rdd_id(frame: DataFrame) -> int | None:
    """The id of the RDD holding a local checkpoint's blocks (None when ``frame`` is not one)."""
    plan = frame._jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() != "LogicalRDD":
        return None
    return int(plan.rdd().id())


def release(frame: DataFrame) -> None:
    """Remove a local checkpoint's blocks now (else they go only when the JVM collects the frame); a
    persisted frame is unpersisted. ``frame`` must not be read afterwards."""
    plan = frame._jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)
    else:
        frame.unpersist()
