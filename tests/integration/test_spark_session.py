"""The shared Spark session as gridlake builds it (gridlake.spark), on real Spark."""

from __future__ import annotations


def test_the_session_truncates_long_plan_strings(spark):
    # the property is one Spark 4 knows: a plan whose string would be far longer comes back cut at the limit
    from pyspark.sql import functions as F

    from gridlake.spark import MAX_PLAN_STRING_LENGTH

    values = [f"value-{i:07d}" for i in range(20_000)]          # ~300,000 characters of literals in the plan
    df = spark.range(3).where(F.col("id").cast("string").isin(values))
    text = df._jdf.queryExecution().toString()
    assert len(text) <= MAX_PLAN_STRING_LENGTH + 1_000 and text.endswith("more characters")
    assert df.count() == 0


def test_the_driver_runs_the_configured_garbage_collector(spark):
    # spark.driver_gc (conf/gridlake.yaml: parallel) reaches the JVM the session was launched in
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    names = sorted(str(b.getName()) for b in beans)
    assert names == ["PS MarkSweep", "PS Scavenge"], names
