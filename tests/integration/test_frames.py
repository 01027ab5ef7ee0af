"""gridlake.frames: a kept frame has the same rows, is computed once, and is released by its keeper."""

from __future__ import annotations

from pyspark.sql import functions as F

from gridlake.frames import Keeper, keep_batch, materialise


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


def test_a_large_nights_frame_is_persisted_computed_and_released(spark):
    src = _source(spark)
    kept = Keeper(cut_lineage=False)
    frame = kept.keep(src)
    assert frame.is_cached
    level = frame.storageLevel      # on disk only: no storage memory that execution could not take back
    assert level.useDisk and not level.useMemory and not level.useOffHeap
    assert sorted(map(tuple, frame.collect())) == sorted(map(tuple, src.collect()))
    kept.release()
    assert not frame.is_cached
    assert kept.frames == []


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
