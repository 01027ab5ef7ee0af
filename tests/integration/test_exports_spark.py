"""The exports stage on a tiny gold.followups written with Spark: one file per grid, the night only, index.json."""

from __future__ import annotations

import csv
import datetime as dt
import io as _io
import json
import shutil
import subprocess

import pytest
from openpyxl import load_workbook

from gridlake import io
from gridlake.manifest import Manifest
from gridlake.pipeline import RunContext
from jobs.gold import exports
from schemas.gold import FOLLOWUPS

pytestmark = pytest.mark.spark

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _followup(run_date, grid, rank, house, did, street="沙头街道", **kw):
    row = {
        "run_date": run_date, "street": street, "community": "上沙社区", "grid_id": grid, "officer_id": f"O{grid}",
        "rank": rank, "discrepancy_id": did, "rule": "R5", "rule_title": "执法记录涉及人员未在该房屋申报",
        "house_code": house, "address": "福田区沙头街道上沙村东村二坊12号602", "priority": 4.0 - rank,
        "reason_codes": ["recent"], "evidence_categories": ["计生", "公安"], "masked_id": "4403**********123X",
        "masked_name": "欧**明", "masked_phone": "138****5678", "is_new": rank == 1, "due_date": run_date + dt.timedelta(7),
        "status": "open",
    }
    row.update(kw)
    return tuple(row.get(f.name) for f in FOLLOWUPS.fields)


@pytest.fixture
def night(spark, settings):
    rows = [
        _followup(D2, "G002", 2, "440304001002000002", "1e10000000000001"),
        _followup(D2, "G002", 1, "040304001002000001", "00000000000000e5"),
        _followup(D2, "G001", 1, "440304001001000001", "a0b1c2d3e4f50617", status="escalated"),
        _followup(D2, "G900", 1, None, "ffff000011112222", street="香蜜湖街道", rule="R6", house_code=None,
                  masked_id=None, masked_name=None, masked_phone=None),
        _followup(D1, "G001", 1, "440304001001000009", "9999999999999999"),  # another night: not exported
    ]
    io.write_table(spark.createDataFrame(rows, FOLLOWUPS), settings, "gold", "followups", "overwrite")
    manifest = Manifest.open(settings, "test__exports", D2)
    return RunContext(settings, spark, D2, "test__exports", manifest)


def test_exports_stage_writes_one_file_per_grid(night):
    stats = exports.run(night)
    root = night.settings.exports / "2026-11-02"
    assert stats["grids"] == 3 and stats["rows"] == 4 and stats["files"] == 6
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.xlsx")) == [
        "沙头街道/G001.xlsx", "沙头街道/G002.xlsx", "香蜜湖街道/G900.xlsx"]
    ws = load_workbook(root / "沙头街道" / "G002.xlsx").active
    headers = [c.value for c in ws[1]]
    ids = [ws.cell(row=r, column=headers.index("问题编号") + 1) for r in (2, 3)]
    assert [c.value for c in ids] == ["00000000000000e5", "1e10000000000001"]  # ranked; hex ids never numbers
    assert all(c.data_type == "s" and c.number_format == "@" for c in ids)
    codes = [ws.cell(row=r, column=headers.index("房屋编码") + 1).value for r in (2, 3)]
    assert codes == ["040304001002000001", "440304001002000002"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref
    g001 = list(csv.DictReader(_io.StringIO((root / "沙头街道" / "G001.csv").read_bytes().decode("utf-8-sig"))))
    assert [r["问题编号"] for r in g001] == ["a0b1c2d3e4f50617"]  # only tonight's row of that grid
    assert g001[0]["状态"] == "已升级" and g001[0]["证据来源"] == "公安、计生"
    index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    assert {f["grid_id"]: f["rows"] for f in index["files"]} == {"G001": 1, "G002": 2, "G900": 1}
    assert night.manifest.doc["links"]["exports_index"] == str(root / "index.json")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = exports.run(night)
    assert again["files_written"] == 0
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.skipif(not shutil.which("libreoffice"), reason="LibreOffice not installed")
def test_libreoffice_reads_ids_as_text(night, tmp_path):
    exports.run(night)
    src = night.settings.exports / "2026-11-02" / "沙头街道" / "G002.xlsx"
    subprocess.run(["libreoffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile",
                    "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(tmp_path), str(src)],
                   check=True, capture_output=True, timeout=180)
    rows = list(csv.DictReader(_io.StringIO((tmp_path / "G002.csv").read_text(encoding="utf-8-sig"))))
    assert [r["房屋编码"] for r in rows] == ["040304001002000001", "440304001002000002"]
    assert [r["问题编号"] for r in rows] == ["00000000000000e5", "1e10000000000001"]
    assert {r["身份证号(脱敏)"] for r in rows} == {"4403**********123X"}
