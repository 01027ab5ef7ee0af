"""Spark adapter of the matching library on tiny inline DataFrames."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F


def test_address_columns(spark):
    from matching.spark import address_columns, normalized_address, parsed_address

    df = spark.createDataFrame([("1", "福华花园三栋五零一"), ("2", None)], "id string, address_raw string")
    out = (df.withColumn("_a", address_columns(F.col("address_raw")))
           .select("id", "_a.address_norm", "_a.addr", normalized_address(F.col("address_raw")).alias("n"),
                   parsed_address(F.col("address_raw")).alias("p"))
           .orderBy("id").collect())
    assert out[0]["address_norm"] == "福华花园3栋501"
    assert out[0]["addr"]["building"] == "3" and out[0]["addr"]["room"] == "501"
    assert out[0]["n"] == "福华花园3栋501" and out[0]["p"]["complex"] == "福华花园"
    assert out[1]["address_norm"] is None and out[1]["addr"]["room"] is None


def test_address_columns_equal_the_two_separate_passes(spark):
    """The one-pass UDF (each distinct text normalised once, parsed once) gives what normalising and
    parsing separately give, row by row, repeated texts and texts that normalise alike included."""
    from matching.spark import address_columns, normalized_address, parsed_address

    texts = ["福华花园三栋五零一", "福华花园3栋501", "福华花园3栋501", "  ", None, "上沙村东村二坊12号302",
             "深南大道1006号国际创新中心A座10楼", "福田区沙头街道上沙社区上沙村2坊5号601房", "梅林1村12栋2单元803",
             "皇岗村2区2坊3号", "福华路18号", "福华花园3栋501"]
    df = spark.createDataFrame([(str(i), t) for i, t in enumerate(texts)], "id string, address_raw string")
    rows = (df.repartition(3).withColumn("_a", address_columns(F.col("address_raw")))
            .select("id", "_a.address_norm", "_a.addr", normalized_address(F.col("address_raw")).alias("n"),
                    parsed_address(F.col("address_raw")).alias("p")).collect())
    assert len(rows) == len(texts)
    for r in rows:
        assert r["address_norm"] == r["n"], r["id"]
        assert r["addr"].asDict() == r["p"].asDict(), r["id"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["5"]["addr"]["village"] and by_id["5"]["addr"]["lane_no"] == "12"


def test_house_resolution_transform(spark):
    from jobs.matching.runner import transform
    from matching.spark import address_columns
    from matching.spec import load_spec

    base = "沙头街道新华社区福华路18号福华花园"
    houses = [("H1", f"{base}3栋501", "in_use", True), ("H2", f"{base}3栋502", "in_use", True),
              ("H3", f"{base}5栋301", "in_use", True), ("H4", f"{base}5栋302", "demolished", True),
              ("H5", f"{base}6栋101", "in_use", False)]
    hdf = (spark.createDataFrame(houses, "house_code string, address_raw string, status string, is_current boolean")
           .withColumn("grid_id", F.lit("G1")).withColumn("community", F.lit("新华社区"))
           .withColumn("_a", address_columns(F.col("address_raw"))).select("*", "_a.address_norm", "_a.addr"))
    recs = [("declarations", "D1", "H2", "福华花园3栋502"),      # scanned code agrees
            ("declarations", "D2", "H1", "福华花园5栋301"),      # scanned code contradicts text -> text
            ("police_incidents", "P1", None, "福华花园三栋五零一"),
            ("police_incidents", "P2", None, "福华花园3栋503"),  # room not in registry
            ("police_incidents", "P3", None, "新华社区福华花园5栋302")]  # demolished -> not a candidate
    rdf = (spark.createDataFrame(recs, "source string, record_id string, house_code string, address_raw string")
           .withColumn("_a", address_columns(F.col("address_raw"))).select("*", "_a.address_norm", "_a.addr"))
    spec = load_spec("address_to_house")  # a 4-house registry gives weak weights: lower the bar for the test
    spec = spec.model_copy(update={"decision": spec.decision.model_copy(update={"min_weight": 2.0, "min_gap": 1.0})})
    out = {r["record_id"]: r for r in transform(rdf, hdf, spec).collect()}
    print({k: (v["house_code"], v["method"], v["explanation"]) for k, v in out.items()})
    assert len(out) == 5
    assert (out["D1"]["house_code"], out["D1"]["method"]) == ("H2", "scanned_code_verified")
    assert out["D2"]["house_code"] == "H3" and out["D2"]["method"] != "scanned_code_verified"
    assert out["P1"]["house_code"] == "H1" and out["P1"]["grid_id"] == "G1"
    assert "room=exact" in out["P1"]["explanation"]
    assert out["P2"]["house_code"] is None and out["P2"]["method"] == "unresolved"
    assert out["P3"]["house_code"] is None and out["P3"]["community"] == "新华社区"


@pytest.mark.parametrize("cap", [None, 2])
def test_spark_blocking_equals_the_pandas_engine(spark, cap):
    """The exploded one-join blocking on Spark yields the pandas engine's pairs and too-vague report."""
    from pathlib import Path

    import pandas as pd

    from matching import engine
    from matching.spark import block_spark_info
    from matching.spec import load_spec

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "matching"
    spec = load_spec("address_to_house")
    if cap is not None:
        spec = spec.model_copy(update={"max_block_size": cap})
    right = engine.prepare(pd.read_csv(fixtures / "registry.csv", dtype=str), spec, "right")
    left = engine.prepare(pd.read_csv(fixtures / "queries.csv", dtype=str), spec, "left")
    want_pairs, want_vague = engine.block_info(left, right, spec)

    def sdf(pdf):
        cols = ["_id", *sorted({k.split("[")[0] for r in spec.blocking + spec.blocking_fallback for k in r})]
        return spark.createDataFrame(pdf[cols].astype(object).where(pdf[cols].notna(), None),
                                     ", ".join(f"`{c}` string" for c in cols))

    pairs, vague = block_spark_info(sdf(left), sdf(right), spec)
    got_pairs = {(r["_id_l"], r["_id_r"]) for r in pairs.collect()}
    assert got_pairs == set(map(tuple, want_pairs[["_id_l", "_id_r"]].to_numpy().tolist()))
    assert len(got_pairs) > 10
    got_vague = {r["_id_l"]: r["_too_vague"] for r in vague.collect()}
    assert got_vague == {k: "|".join(sorted(set(v))) for k, v in want_vague.items()}
    if cap is not None:
        assert got_vague, "a cap of 2 makes some rules too vague for some queries"
