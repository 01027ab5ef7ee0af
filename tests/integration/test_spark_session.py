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
    # spark.driver_gc reaches the JVM the session was launched in: the shipped "jvm" adds no collector
    # option (the JVM picks), "parallel" (gridlake demo on a small district) runs PS Scavenge / PS MarkSweep
    from gridlake.config import load_settings

    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    names = sorted(str(b.getName()) for b in management.getGarbageCollectorMXBeans())
    flags = [str(a) for a in management.getRuntimeMXBean().getInputArguments() if str(a).startswith("-XX:+Use")]
    choice = load_settings("local").spark.driver_gc
    if choice == "parallel":
        assert names == ["PS MarkSweep", "PS Scavenge"] and "-XX:+UseParallelGC" in flags, (names, flags)
    else:
        assert choice == "jvm" and not [f for f in flags if f.endswith("GC")], flags
        assert not any(n.startswith("PS ") for n in names), names


def test_the_driver_runs_the_configured_compiler_thresholds(spark):
    # spark.driver_jit reaches the JVM the session was launched in, and the JVM runs with those thresholds
    from gridlake.config import load_settings
    from gridlake.spark import JIT_OPTIONS

    jvm = spark.sparkContext._jvm
    args = [str(a) for a in jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()]
    want = JIT_OPTIONS[load_settings("local").spark.driver_jit]
    assert [a for a in args if a.startswith("-XX:Tier4")] == list(want), args
    hotspot = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
    for option in want:
        name, value = option[len("-XX:"):].split("=")
        assert str(hotspot.getVMOption(name).getValue()) == value, name


def test_every_compiler_choice_is_one_the_sessions_java_accepts_and_applies():
    # a JVM refuses an option it does not know, and Spark would not start: each choice's options, given to the
    # java the sessions run on, are taken and show in its final flags with their values
    import os
    import subprocess

    from gridlake.spark import JIT_OPTIONS, find_java_home

    java = os.path.join(find_java_home(), "bin", "java")
    for choice, options in JIT_OPTIONS.items():
        out = subprocess.run([java, *options, "-XX:+PrintFlagsFinal", "-version"], capture_output=True, text=True,
                             check=True).stdout
        final = {f[1]: f[3] for f in (line.split() for line in out.splitlines()) if len(f) >= 4 and f[2] == "="}
        for option in options:
            name, value = option[len("-XX:"):].split("=")
            assert final.get(name) == value, (choice, name, final.get(name))
    assert JIT_OPTIONS["late_c2"] and not JIT_OPTIONS["jvm"]


def test_persisted_frames_are_cached_as_the_setting_says_and_read_back_whole(spark):
    # spark.cache_compressed reaches the session; a frame kept on disk uncompressed (how a district night keeps
    # gold's views) reads back the same rows: strings, nulls, structs and arrays
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from gridlake.config import load_settings

    want = str(load_settings("local").spark.cache_compressed).lower()
    assert spark.conf.get("spark.sql.inMemoryColumnarStorage.compressed") == want
    df = spark.range(5_000).select(
        F.col("id"), F.when(F.col("id") % 7 == 0, None).otherwise(F.concat(F.lit("深南大道"), F.col("id"))).alias("s"),
        F.struct((F.col("id") % 13).alias("room"), F.lit("栋").alias("m")).alias("addr"),
        F.array(F.col("id"), F.col("id") * 2).alias("xs"))
    kept = df.persist(StorageLevel.DISK_ONLY)
    try:
        assert kept.count() == 5_000
        assert sorted(map(tuple, kept.collect())) == sorted(map(tuple, df.collect()))
    finally:
        kept.unpersist()
