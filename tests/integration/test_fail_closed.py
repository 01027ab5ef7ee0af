"""Item 10 of issue 17: every check fails closed (tiny frames, the shared Spark)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from gridlake.errors import QualityGateError
from gridlake.manifest import Manifest
from gridlake.pipeline import RunContext

pytestmark = pytest.mark.spark

RUN_DATE = dt.date(2024, 5, 1)
HOUSING_DDL = ("house_code string, grid_id string, status string, area_m2 double, updated_at date, "
               "valid_from date, valid_to date, is_current boolean, _source_file string, _row_number long")


def make_ctx(spark, settings) -> RunContext:
    return RunContext(settings, spark, RUN_DATE, "test__fail_closed", Manifest.open(settings, "test__fail_closed", RUN_DATE))


def housing(spark):
    d0 = dt.date(2024, 1, 1)
    return spark.createDataFrame([("H1", "G01", "in_use", 60.0, d0, d0, None, True, "f.csv", 1)], HOUSING_DDL)


def test_gate_fails_an_error_level_expectation_whose_column_is_missing(spark, settings):
    ctx = make_ctx(spark, settings)
    assert ctx.audit("silver", "housing", housing(spark))["success"]  # the whole frame passes
    with pytest.raises(QualityGateError, match=r"expect_column_values_to_not_be_null\(house_code\) cannot run "
                                               r"\(column\(s\) missing: house_code\)"):
        ctx.audit("silver", "housing", housing(spark).drop("house_code"))
    rows = spark.read.format("delta").load(settings.table_path("quality", "results"))
    assert rows.where("expectation LIKE 'expect_column_values_to_not_be_null(house_code%' "
                      "AND success = false AND NOT skipped").count() == 1


def test_gold_is_not_published_unaudited_when_the_gate_cannot_be_imported(spark, settings, monkeypatch):
    from jobs.gold import runner

    monkeypatch.setitem(sys.modules, "gridlake.quality.gate", None)  # an import of it now raises ImportError
    with pytest.raises(ImportError):
        runner._audit(make_ctx(spark, settings), "grid_metrics", spark.range(1))
    assert not Path(settings.table_path("gold", "grid_metrics")).exists()


def test_silver_is_not_published_unaudited_when_the_gate_cannot_be_imported(spark, settings, monkeypatch):
    from jobs.silver.runner import audit

    monkeypatch.setitem(sys.modules, "gridlake.quality.gate", None)
    with pytest.raises(ImportError):
        audit(make_ctx(spark, settings), "housing", housing(spark))


def test_silver_fails_when_the_matching_library_cannot_be_imported(spark, monkeypatch):
    from pyspark.sql import functions as F

    from jobs.silver.common import with_address

    df = spark.createDataFrame([("南京市玄武区某路1号",)], "address string")
    assert with_address(df).first()["addr"] is not None  # parsed with the library
    monkeypatch.setitem(sys.modules, "matching.spark", None)
    with pytest.raises(ImportError):
        with_address(df.select(F.col("address")))


def test_evaluate_does_not_fall_back_on_a_broken_table(settings):
    from gridlake.evaluate import _read_gold

    assert _read_gold(settings) is None  # no table at all: the one case the landing files are resolved
    log_dir = Path(settings.table_path("gold", "house_resolution")) / "_delta_log"
    log_dir.mkdir(parents=True)
    (log_dir / "00000000000000000000.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(Exception) as info:
        _read_gold(settings)
    assert "TableNotFound" not in type(info.value).__name__
