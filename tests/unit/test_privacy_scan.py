"""The privacy scanner finds planted personal data and reports only kinds and counts."""

from __future__ import annotations

from gridlake.ids import check_digit
from gridlake.privacy_scan import KnownPII, scan


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


def test_scanner_finds_planted_values_and_ignores_masked(tmp_path, settings):
    planted_id = _id("44030419900101123")
    leaky = tmp_path / "leaky.json"
    leaky.write_text(f'{{"x": "{planted_id}", "p": "13812345678", "n": "欧阳明华"}}', encoding="utf-8")
    clean = tmp_path / "clean.csv"
    clean.write_text("4403**********1234,138****5678,欧*华\n", encoding="utf-8")
    known = KnownPII(phones={"13812345678"}, names={"欧阳明华"})
    report = scan(settings, targets=[("text", leaky), ("text", clean)], known=known)
    kinds = {(f.path.endswith("leaky.json"), f.kind) for f in report.findings}
    assert kinds == {(True, "id_number"), (True, "phone"), (True, "name")}
    assert report.files_scanned == 2
    # The report holds locations and counts, never the values.
    assert planted_id not in str(report.to_dict()) and "13812345678" not in str(report.to_dict())


def test_bad_checksum_and_house_codes_are_not_ids(tmp_path, settings):
    first17 = "44030419900101123"
    wrong = first17 + ("0" if check_digit(first17) != "0" else "1")
    f = tmp_path / "a.txt"
    f.write_text(f"{wrong} {_id('44030420001231456')}", encoding="utf-8")
    known = KnownPII(house_codes={_id("44030420001231456")})
    assert scan(settings, targets=[("text", f)], known=known).leaks == 0


def test_a_name_that_is_a_piece_of_a_registered_address_is_not_looked_for():
    from gridlake.privacy_scan import place_names, scan_text

    names = {"黄贝", "贝岭", "欧阳明华", "沙头", "李四"}
    registry = ["深圳市罗湖区黄贝街道黄贝岭村12号501", "福田区沙头街道上沙村东村二坊12号602", None, ""]
    places = place_names(names, registry)
    assert places == {"黄贝", "贝岭", "沙头"}      # overlapping pieces too: 黄贝岭 holds 黄贝 and 贝岭
    known = KnownPII(names=names - places)
    text = "黄贝岭村12号501 李四 沙头街道"
    found = scan_text(text, "gold.t.address", known, known.name_pattern())
    assert [(f.kind, f.count) for f in found] == [("name", 1)]   # 李四 only
    assert KnownPII(names=names).name_pattern().findall(text) == ["黄贝", "李四", "沙头"]


def test_the_name_finder_follows_a_change_of_the_names_of_the_same_count():
    known = KnownPII(names={"李四", "王五"})
    assert known.name_pattern().findall("李四王五赵六") == ["李四", "王五"]
    known.names.discard("王五")
    known.names.add("赵六")
    assert known.name_pattern().findall("李四王五赵六") == ["李四", "赵六"]


def test_a_number_inside_a_hex_digest_is_not_a_leak_but_the_same_number_elsewhere_is():
    from gridlake.privacy_scan import scan_text

    phone, pid = "13812345678", _id("44030419900101123")
    known = KnownPII(phones={phone}, names={"欧阳明华"})
    digest = "9f" + phone + "c" + "ab" * 25           # 64 hex characters, as an HMAC pseudonym
    short = "e" + phone + "d0a1"                        # 16, as a discrepancy id
    assert len(digest) == 64 and len(short) == 16
    assert scan_text(f"{digest}\n{short}\n{'a' + pid + 'bcdef'}", "gold.t.person_key", known, None) == []
    # the same values standing alone, after a label or beside Chinese text are found
    for text in (phone, f"tel:{phone}", f"电话{phone}号", f"{phone}-{digest}", f"{pid}\n{digest}"):
        kinds = {f.kind for f in scan_text(text, "gold.t.note", known, None)}
        assert kinds & {"phone", "id_number"}, text
    # letters that are not hex digits do not make a digest: a phone between them is found; and a name
    # beside a digest is still found (only numbers are looked for outside hex tokens)
    assert scan_text(f"x{phone}y", "gold.t.note", known, None)
    assert scan_text(f"欧阳明华 {digest}", "gold.t.note", known, known.name_pattern())[0].kind == "name"


def _openpyxl_text(path) -> str:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    rows = ["\t".join("" if v is None else str(v) for v in row) for ws in wb.worksheets
            for row in ws.iter_rows(values_only=True)]
    wb.close()
    return "\n".join(rows)


def test_workbook_text_is_what_openpyxl_reads_back_and_a_planted_name_is_found(tmp_path, settings):
    import datetime as dt

    from openpyxl import Workbook

    from gridlake.privacy_scan import _xlsx_text
    from jobs.exports.writer import xlsx_bytes

    wb = Workbook()
    ws = wb.active
    ws.append(["排名", "地址", "优先级", "新增", "电话"])
    ws.append([1, "福田区华富街道田面社区1栋", 9.14, True, "13812345678"])
    ws.append([2, "=cmd|' /C calc'!A0", 0.1 + 0.2, False, None])
    ws.append([3, "欧阳明华", 1e-7, None, "  "])
    wb.create_sheet("第二页").append(["第二页", 12345678901234567890])
    mixed = tmp_path / "mixed.xlsx"
    wb.save(mixed)
    exported = tmp_path / "exported.xlsx"   # an officer's list as the exports stage writes it
    exported.write_bytes(xlsx_bytes([], "4403040801001", dt.date(2026, 11, 2)))
    for path in (mixed, exported):
        assert _xlsx_text(path) == _openpyxl_text(path)
    assert "\t9.14\tTrue\t" in _xlsx_text(mixed) and "\t1e-07\t" in _xlsx_text(mixed)
    report = scan(settings, targets=[("xlsx", mixed)], known=KnownPII(phones={"13812345678"}, names={"欧阳明华"}))
    assert {f.kind for f in report.findings} == {"phone", "name"}


def test_a_workbook_that_does_not_parse_fails_the_scan(tmp_path, settings):
    import zipfile

    import pytest

    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet><sheetData><row>")
    with pytest.raises(Exception):  # noqa: B017, PT011 (expat's ParseError): never an empty text
        scan(settings, targets=[("xlsx", broken)], known=KnownPII())


def test_ids_and_phones_are_found_where_a_pattern_asserting_no_digit_before_them_finds_them():
    """The scanner's patterns look behind their first character instead of before it (a faster search): on
    random texts of digits, ``X``, hex letters, Chinese and line breaks, with ID numbers and phones planted
    next to digits, letters and edges, they find what the plain patterns (a leading ``(?<![0-9])``) find."""
    import random
    import re

    from gridlake.privacy_scan import Finding, scan_text, valid_id18

    plain_id = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
                          r"[0-9]{3}[0-9Xx](?![0-9])")
    plain_phone = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
    hex_token = re.compile(r"(?<![0-9A-Za-z])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}(?![0-9A-Za-z])")
    rng = random.Random(20141)
    pieces = [*"0123456789", "X", "x", "a", "F", "号", "楼", "\n", " ", "-", _id("44030419900101123"),
              _id("11010520001231002"), "13812345678", "19912345678", "1381234567", "44030419900101123X"]
    known = KnownPII(house_codes={_id("11010520001231002")})
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        numbers = hex_token.sub(" ", text)   # as the scanner: no number is searched inside a hex token
        ids = sum(1 for m in plain_id.findall(numbers) if valid_id18(m) and m not in known.house_codes)
        phones = len(plain_phone.findall(numbers))
        want = ([Finding("t", "id_number", ids)] if ids else []) + ([Finding("t", "phone", phones)] if phones else [])
        assert scan_text(text, "t", known, None) == want, text
        checked += bool(want)
    assert checked > 300   # the texts did plant IDs and phones (476 of these 3,000)
