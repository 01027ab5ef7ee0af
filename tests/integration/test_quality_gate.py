"""The write-audit-publish gate on real GX validations (tiny inline frames, shared Spark)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest

from gridlake.context import RunContext
from gridlake.errors import QualityGateError
from gridlake.ids import check_digit
from gridlake.manifest import Manifest

pytestmark = pytest.mark.spark

RUN_DATE = dt.date(2024, 5, 1)
HOUSING_DDL = ("house_code string, grid_id string, status string, area_m2 double, updated_at date, "
               "valid_from date, valid_to date, is_current boolean, _source_file string, _row_number long")
SRC = "landing/housing/2024-05-01/housing.csv"
ENGINE = {True: "pandas", False: "spark"}


@pytest.fixture(params=["pandas", "spark"])
def settings(request, tmp_path):
    """Each test twice: small frames validated by GX's pandas engine (the default), and always on Spark."""
    from gridlake.config import load_settings

    env = {**os.environ, "GRIDLAKE_VALIDATION__PANDAS_MAX_ROWS": "100000" if request.param == "pandas" else "0"}
    loaded = load_settings("local", data_root=tmp_path / "data", env=env)
    return loaded


def make_ctx(spark, settings, run_id: str = "test__2024-05-01", run_date: dt.date = RUN_DATE) -> RunContext:
    return RunContext(settings, spark, run_date, run_id, Manifest.open(settings, run_id, run_date))


def housing(spark, rows):
    d0 = dt.date(2024, 1, 1)
    full = [(code, "G01", "in_use", area, d0, d0 if cur else dt.date(2023, 1, 1), vt, cur, SRC, i + 1)
            for i, (code, cur, vt, area) in enumerate(rows)]
    return spark.createDataFrame(full, HOUSING_DDL)


def test_duplicate_current_house_codes_stop_publication_and_fixed_frame_passes(spark, settings):
    ctx = make_ctx(spark, settings)
    old = dt.date(2024, 3, 1)
    dup = housing(spark, [("H1", True, None, 60.0), ("H1", True, None, 61.0), ("H2", True, None, 70.0),
                          ("H3", False, old, 50.0), ("H3", True, None, 50.0)])
    with pytest.raises(QualityGateError) as exc:
        ctx.audit("silver", "housing", dup)
    msg = str(exc.value)
    assert "silver.housing: expect_column_values_to_be_unique(house_code where is_current = true) failed" in msg
    assert "2 of 4 rows unexpected" in msg
    assert msg.endswith("publication stopped")
    # the stored result names the failing rows by surrogate id only
    stored = json.loads((settings.quality / "2024-05-01" / "silver.housing.json").read_text(encoding="utf-8"))
    uniq = [r for r in stored["results"] if r["expectation_config"]["type"] == "expect_column_values_to_be_unique"]
    assert uniq and {tuple(sorted(x)) for x in uniq[0]["result"]["failing_row_ids"]} == {("_row_number", "_source_file")}
    assert sorted(x["_row_number"] for x in uniq[0]["result"]["failing_row_ids"]) == [1, 2]

    fixed = housing(spark, [("H1", True, None, 60.0), ("H1", False, old, 61.0), ("H2", True, None, 70.0)])
    result = ctx.audit("silver", "housing", fixed)
    assert result["success"] is True and result["failed_errors"] == 0
    assert result["engine"] == ENGINE[settings.validation.pandas_max_rows > 0]
    assert ctx.manifest.doc["quality"]["silver.housing"]["success"] is True

    rows = spark.read.format("delta").load(settings.table_path("quality", "results"))
    mine = rows.where("expectation = 'expect_column_values_to_be_unique(house_code | is_current = true)'").collect()
    assert len(mine) == 1  # merged: the rerun of the same run replaced the failed row
    assert mine[0]["success"] is True and mine[0]["dimension"] == "uniqueness" and mine[0]["element_count"] == 2


def test_warning_is_recorded_and_run_goes_on(spark, settings):
    ctx = make_ctx(spark, settings)
    df = housing(spark, [("H1", True, None, 60.0), ("H2", True, None, 99999.0)])  # area out of band: warning
    result = ctx.audit("silver", "housing", df)
    assert result["success"] is True
    assert result["failed_warnings"] == 1
    assert "expect_column_values_to_be_between(area_m2) failed: 1 of 2 rows unexpected" in result["warnings"][0]
    assert ctx.manifest.doc["quality"]["silver.housing"]["failed_warnings"] == 1


def test_future_date_is_an_error_relative_to_the_run_date(spark, settings):
    df = spark.createDataFrame(
        [("H1", "G01", "in_use", 60.0, dt.date(2024, 5, 2), dt.date(2024, 1, 1), None, True, SRC, 1)], HOUSING_DDL)
    with pytest.raises(QualityGateError, match=r"updated_at\) failed: 1 of 1 rows unexpected"):
        make_ctx(spark, settings).audit("silver", "housing", df)
    # the same row is fine one night later
    assert make_ctx(spark, settings, "test__2024-05-02", dt.date(2024, 5, 2)).audit("silver", "housing", df)["success"]


def test_rental_house_codes_checked_against_housing(spark, settings):
    ctx = make_ctx(spark, settings)
    ctx.extras["quality_lookups"] = {"silver.housing": housing(spark, [("H1", True, None, 60.0)])}
    df = spark.createDataFrame(
        [(f"R{i}", "H1" if i < 3 else "H404", dt.date(2024, 1, 1), None, "active", dt.datetime(2024, 1, 1), SRC, i)
         for i in range(5)],
        "rental_id string, house_code string, lease_start date, lease_end date, status string, registered_at timestamp, "
        "_source_file string, _row_number long")  # every column an error-level check reads (a missing one fails)
    result = ctx.audit("silver", "rentals", df)
    assert result["success"] is True  # consistency is a warning for rentals
    assert result["engine"] == ENGINE[settings.validation.pandas_max_rows > 0]
    assert any("_house_code_known) failed: 2 of 5 rows unexpected" in w for w in result["warnings"])


def test_a_consistency_check_without_its_lookup_table_is_skipped_not_failed(spark, settings):
    # no silver.housing yet: the declarations' house codes cannot be looked up; no other check of the suite
    # reads house_code, so the pandas engine collects only the derived column, and the verdict must still
    # come from the frame's own columns ("lookup missing", not "column missing")
    ctx = make_ctx(spark, settings)
    good = "11010519491231002" + check_digit("11010519491231002")
    df = spark.createDataFrame(
        [(f"D{i}", good, f"H{i}", dt.datetime(2024, 4, 30, 10, 0), SRC, i) for i in range(3)],
        "declaration_id string, id_number string, house_code string, declared_at timestamp, "
        "_source_file string, _row_number long")
    result = ctx.audit("silver", "declarations", df)
    assert result["success"] is True and result["failed_errors"] == 0
    assert result["engine"] == ENGINE[settings.validation.pandas_max_rows > 0]
    known = [s for s in result["skipped"] if s.startswith("expect_column_values_to_be_in_set(_house_code_known)")]
    assert len(known) == 1 and "lookup table does not exist" in known[0]


PLANTED_ID = "44030419900307123"  # + a wrong check digit below
PLANTED_NAME = "欧阳测试娜"
PLANTED_PHONE = "13987654321x"


def test_no_personal_data_in_any_quality_output(spark, settings):
    bad_id = PLANTED_ID + ("1" if check_digit(PLANTED_ID) != "1" else "2")
    good = "11010519491231002" + check_digit("11010519491231002")
    ddl = ("declaration_id string, id_number string, name string, phone string, declared_at timestamp, "
           "_source_file string, _row_number long")
    ts = dt.datetime(2024, 4, 30, 10, 0)
    rows = [("D1", good, "张三", "13800000000", ts, SRC, 1), ("D2", bad_id, PLANTED_NAME, PLANTED_PHONE, ts, SRC, 2),
            ("D2", bad_id, PLANTED_NAME, PLANTED_PHONE, ts, SRC, 3)]
    ctx = make_ctx(spark, settings)
    with pytest.raises(QualityGateError) as exc:
        ctx.audit("silver", "declarations", spark.createDataFrame(rows, ddl))
    assert "_id_ok) failed: 2 of 3 rows unexpected" in str(exc.value)
    for planted in (bad_id, PLANTED_NAME, PLANTED_PHONE):
        assert planted not in str(exc.value)
    from gridlake.quality.docs import build_data_docs

    build_data_docs(settings)
    ctx.manifest.write()
    files = [p for p in settings.quality.rglob("*") if p.is_file()]
    files += [p for p in Path(settings.table_path("quality", "results")).rglob("*") if p.is_file()]
    files.append(ctx.manifest.path)
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".parquet" for p in files)
    needles = [s.encode("utf-8") for s in (bad_id, PLANTED_NAME, PLANTED_PHONE, PLANTED_ID)]
    for p in files:
        data = p.read_bytes()
        for n in needles:
            assert n not in data, f"{n!r} leaked into {p}"
    # failing rows are still identified, by surrogate ids
    stored = (settings.quality / "2024-05-01" / "silver.declarations.json").read_text(encoding="utf-8")
    assert '"_row_number": 2' in stored and '"_row_number": 3' in stored


def test_data_docs_render_offline(spark, settings):
    ctx = make_ctx(spark, settings)
    ctx.audit("silver", "housing", housing(spark, [("H1", True, None, 60.0), ("H2", True, None, 99999.0)]))
    from gridlake.quality.docs import build_data_docs

    index = build_data_docs(settings)
    pages = list(index.parent.rglob("*.html"))
    assert len(pages) >= 3  # index, the suite page, the validation page
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"https?://", html), page
        assert "vendor/bootstrap.min.css" in html
    assert (index.parent / "static" / "vendor" / "bootstrap.min.css").stat().st_size > 100_000
    assert "silver.housing" in index.read_text(encoding="utf-8")


def test_quality_report_is_self_contained_and_linked(spark, settings):
    ctx = make_ctx(spark, settings)
    ctx.manifest.set("links", {"district_report": "reports/district/2024-05-01.html"})
    ctx.manifest.record_files([{"source": "housing", "path": SRC, "sha256": "ab" * 32, "rows": 2}])
    ctx.audit("silver", "housing", housing(spark, [("H1", True, None, 60.0), ("H2", True, None, 99999.0)]))
    from jobs.reports.quality import run

    stats = run(ctx)
    html_path = settings.reports / "quality" / "2024-05-01.html"
    html = html_path.read_text(encoding="utf-8")
    assert stats["report"] == str(html_path)
    assert '<meta charset="utf-8">' in html and "数据质量报告" in html
    assert not re.search(r"https?://|<link|<script|src=", html)
    assert "ab" * 32 in html and "uniqueness" in html
    summary = json.loads((settings.reports / "quality" / "2024-05-01.json").read_text(encoding="utf-8"))
    assert summary["results_by_dimension"]["accuracy"]["failed_warning"] == 1
    assert summary["trend"][-1]["run_date"] == "2024-05-01"
    links = ctx.manifest.doc["links"]
    assert links["district_report"] == "reports/district/2024-05-01.html"
    assert links["quality_report_html"] == str(html_path) and links["data_docs"].endswith("index.html")


def test_a_nights_changes_are_audited_and_the_table_counted_and_measured_whole(spark, settings):
    """A table merged by its row id is audited on the night's changes: row-level checks on the changes, the
    volume band on the table's size after the MERGE, a share (``mostly``) on the table as it will be."""
    from gridlake.quality import history
    from gridlake.quality.gate import audit_dataframe

    ctx = make_ctx(spark, settings)
    ctx.extras["quality_lookups"] = {"silver.housing": housing(spark, [("H1", True, None, 60.0)])}
    history.append_results(spark, settings, [
        {"run_id": f"n__{d}", "run_date": d, "layer": "gold", "table": "house_resolution",
         "suite": "gold.house_resolution", "expectation": history.ROW_COUNT, "expectation_type": "metric",
         "dimension": "timeliness", "severity": "warning", "success": True, "skipped": False, "element_count": 1000,
         "validated_at": dt.datetime(2024, 4, 1)} for d in (dt.date(2024, 4, 28), dt.date(2024, 4, 29), dt.date(2024, 4, 30))])
    ddl = "source string, record_id string, house_code string, score double"
    changes = spark.createDataFrame([("rentals", f"R{i}", None, 0.0) for i in range(3)], ddl)  # none resolved
    whole = spark.range(1000).selectExpr("'rentals' AS source", "concat('R', id) AS record_id",
                                         "IF(id % 10 = 0, NULL, 'H1') AS house_code", "1.0D AS score")
    result = audit_dataframe(ctx, "gold", "house_resolution", changes, table_rows=1000, whole=whole)
    assert result["success"] and result["rows"] == 1000 and result["changed_rows"] == 3
    assert result["failed_warnings"] == 0, result["warnings"]   # 90% of the table resolved, none of the changes
    stored = json.loads((settings.quality / "2024-05-01" / "gold.house_resolution.json").read_text("utf-8"))
    assert stored["meta"]["gridlake"]["rows"] == 1000 and stored["meta"]["gridlake"]["changed_rows"] == 3
    counted = {r["expectation_config"]["type"]: r["result"] for r in stored["results"]}
    assert counted["expect_table_row_count_to_be_between"]["observed_value"] == 1000
    assert counted["expect_column_values_to_not_be_null"]["element_count"] in (3, 1000)  # record_id or house_code
    recorded = history.previous_counts(spark, settings, "gold", "house_resolution", dt.date(2024, 5, 2), 1)
    assert recorded == [1000]   # the table's size is what later volume bands compare with

    # without the table as it will be, the share cannot be measured: skipped, said why, not run on the changes
    result = audit_dataframe(ctx, "gold", "house_resolution", changes, table_rows=1000)
    assert result["failed_warnings"] == 0
    assert any(s.startswith("expect_column_values_to_not_be_null(house_code") and "not of a night's changes" in s
               for s in result["skipped"])
    # the volume band is the table's: a table shrunk to a tenth is a warning, whatever the changes' size
    result = audit_dataframe(ctx, "gold", "house_resolution", changes, table_rows=100, whole=whole.limit(100))
    assert any("expect_table_row_count_to_be_between" in w and "observed 100" in w for w in result["warnings"])
    # a row-level error among the changes stops publication
    twice = changes.unionByName(changes.limit(1))
    with pytest.raises(QualityGateError, match="expect_compound_columns_to_be_unique"):
        audit_dataframe(ctx, "gold", "house_resolution", twice, table_rows=1000, whole=whole)
