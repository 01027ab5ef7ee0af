"""The nights bench's checks: lake versions from log listings, planted bad rows found in quarantine (no JVM)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import write_deltalake

from tools.bench.nights import lake_versions, quarantine_against_truth

F = "landing/rentals/2026-11-01/rentals_20261101.csv"


def _side(path, rows):
    cols = ["source", "business_key", "reason_code", "_source_file", "_row_number"]
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)},
                     schema=pa.schema([(c, pa.int64() if c == "_row_number" else pa.string()) for c in cols]))
    write_deltalake(str(path), table)


def _truth(data, rows):
    (data / "truth").mkdir(parents=True)
    cols = ["source", "delivery_date", "file", "row_number", "record_id", "quarantine", "quarantine_reason"]
    pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)}), data / "truth" / "records.parquet")


def test_planted_rows_are_found_by_row_or_by_key(tmp_path):
    data = tmp_path
    _truth(data, [
        ("rentals", "2026-11-01", F, 3, "ZL3", True, "bad_checksum"),
        ("rentals", "2026-11-01", F, 5, "ZL5", True, "bad_date"),
        ("rentals", "2026-11-01", F, 9, "ZL1", True, "duplicate"),      # silver marked its twin, row 1
        ("rentals", "2026-11-01", F, 11, "ZL4", True, "malformed_fields"),
        ("rentals", "2026-11-02", F.replace("01", "02"), 1, "ZL8", True, "bad_date"),  # a later night
        ("rentals", "2026-11-01", F, 2, "ZL2", False, None),
    ])
    src = f"/elsewhere/{F}"
    _side(data / "lake" / "silver" / "_quarantine", [
        ("rentals", "ZL3", "ID_CHECKSUM", src, 3), ("rentals", "ZL5", "BAD_DATE", src, 5),
        ("rentals", "ZL7", "BAD_DATE", src, 7)])                          # not planted
    _side(data / "lake" / "silver" / "_duplicates", [("rentals", "ZL1", "DUPLICATE_EXACT", src, 1)])
    out = quarantine_against_truth(data, through="2026-11-01")
    assert out["planted"] == 4
    assert out["by_reason"]["bad_checksum"] == {"planted": 1, "with_expected_reason": 1, "missing": 0,
                                                "other_reasons": {}}
    assert out["by_reason"]["duplicate"]["with_expected_reason"] == 1
    assert out["by_reason"]["malformed_fields"]["missing"] == 1 and out["missing"] == 1
    assert out["beyond_planted"] == {"BAD_DATE": 1}
    assert quarantine_against_truth(data)["planted"] == 5


def test_lake_versions_read_the_newest_commit(tmp_path):
    t = tmp_path / "lake" / "silver" / "x"
    write_deltalake(str(t), pa.table({"a": [1]}))
    write_deltalake(str(t), pa.table({"a": [2]}), mode="append")
    (tmp_path / "lake" / "silver" / "not_a_table").mkdir()
    assert lake_versions(tmp_path / "lake") == {"silver.x": 1}
