"""gridlake.frames: a kept frame has the same rows, is computed once, and is released by its keeper."""

from __future__ import annotations

from pyspark.sql import functions as F

from gridlake.frames import Keeper, checkpoint_rdd_id, keep_batch, materialise, release


def _source(spark):
    return spark.range(50).withColumn("k", (F.col("id") % 7).cast("string")).groupBy("k").agg(F.count("*").alias("n"))


def _plan(df) -> str:
    return df._jdf.queryExecution().analyzed().toString()


def test_a_small_nights_frame_is_cut_from_its_lineage(spark):
    src = _source(spark)
    with Keeper(cut_lineage=True) as kept:
        frame = kept.keep(src)
        assert sorted(map(tuple, frame.collect())) == sorted(map(tuple, src.collect()))
        plan = _plan(frame)
        assert "Aggregate" not in plan and "Range" not in plan, plan  # the plan starts from the kept rows
        assert not frame.is_cached
    assert kept.frames == []


def stored_rdds(spark) -> dict[int, tuple[int, int]]:
    """RDD id -> (memory bytes, disk bytes) of every RDD with blocks in the block manager."""
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()
    return {int(i.id()): (int(i.memSize()), int(i.diskSize())) for i in infos if int(i.numCachedPartitions()) > 0}


def test_a_large_nights_frame_is_checkpointed_on_disk_and_released(spark):
    src = _source(spark)
    kept = Keeper(cut_lineage=False)
    frame = kept.keep(src)
    rdd = checkpoint_rdd_id(frame)
    assert rdd is not None, "a large night's frame is a local checkpoint"
    plan = _plan(frame)
    assert "Aggregate" not in plan and "Range" not in plan, plan  # later queries plan over the kept rows
    assert not frame.is_cached                     # no cached plan for later queries to be matched against
    memory, disk = stored_rdds(spark)[rdd]        # computed at once, on disk only (no storage memory)
    assert memory == 0 and disk > 0
    assert sorted(map(tuple, frame.collect())) == sorted(map(tuple, src.collect()))
    kept.release()
    assert rdd not in stored_rdds(spark)          # its blocks removed now, not when the JVM collects it
    assert kept.frames == []


def test_releasing_a_small_nights_frame_removes_its_blocks(spark):
    with Keeper(cut_lineage=True) as kept:
        rdd = checkpoint_rdd_id(kept.keep(_source(spark)))
        assert rdd in stored_rdds(spark)
    assert rdd not in stored_rdds(spark)


def test_release_unpersists_a_frame_that_is_not_a_checkpoint(spark):
    df = spark.range(5).persist()
    df.count()
    assert checkpoint_rdd_id(df) is None and df.is_cached
    release(df)
    assert not df.is_cached


def test_materialise_cuts_only_up_to_max_rows(spark):
    df = spark.range(10)
    small, rows = materialise(df, max_rows=10)
    assert rows == 10 and not small.is_cached and "Range" not in _plan(small)
    large, rows = materialise(df, max_rows=9)
    try:
        assert rows == 10 and large.is_cached and "Range" in _plan(large)
    finally:
        large.unpersist()


def test_keep_batch_cuts_a_small_batch_and_persists_a_large_one(spark):
    src = _source(spark)
    expected = sorted(map(tuple, src.collect()))
    small = keep_batch(src, rows=7, max_rows=7)
    assert not small.is_cached and "Aggregate" not in _plan(small)   # planned over its kept rows
    assert sorted(map(tuple, small.collect())) == expected
    large = keep_batch(src, rows=8, max_rows=7)
    try:
        level = large.storageLevel
        assert large.is_cached and level.useMemory and level.useDisk and "Aggregate" in _plan(large)
        assert sorted(map(tuple, large.collect())) == expected
    finally:
        large.unpersist()
    assert not large.is_cached


def test_a_large_batch_kept_on_disk_only_holds_no_storage_memory(spark):
    """keep_batch above max_rows: persisted, in memory and on disk by default, on disk only with ``disk_only``
    (silver's typed batches: a district's declarations read back into the heap ran a 4 GB driver out of it)."""
    src = _source(spark)
    default = keep_batch(src, rows=10, max_rows=5)
    disk = keep_batch(_source(spark).where("n > 0"), rows=10, max_rows=5, disk_only=True)
    try:
        assert default.storageLevel.useMemory and default.storageLevel.useDisk
        assert disk.storageLevel.useDisk and not disk.storageLevel.useMemory
        assert sorted(map(tuple, disk.collect())) == sorted(map(tuple, src.collect()))
    finally:
        default.unpersist()
        disk.unpersist()
