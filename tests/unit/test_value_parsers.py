"""The value parsers of gridlake.parse on the forms departments really write (no Spark)."""

from __future__ import annotations

import datetime as dt

import pytest

from gridlake.config import ConfigError
from gridlake.ids import normalize_phone
from gridlake.parse.cnnum import cn_to_int
from gridlake.parse.config import ValueLimits, load_limits
from gridlake.parse.dates import DateRules, future_cutoff, parse_datetime
from gridlake.parse.numbers import parse_number
from gridlake.parse.vocab import load_vocabularies, normalise, reportable, vocabularies

D = dt.datetime


@pytest.mark.parametrize(("text", "value", "form"), [
    ("2026-11-03", D(2026, 11, 3), "YYYY-MM-DD"),
    ("2026/11/3", D(2026, 11, 3), "YYYY/MM/D"),
    ("2026.11.03", D(2026, 11, 3), "YYYY.MM.DD"),
    ("20261103", D(2026, 11, 3), "YYYYMMDD"),
    ("2026年11月3日", D(2026, 11, 3), "YYYY年MM月D日"),
    ("2026年11月3号", D(2026, 11, 3), "YYYY年MM月D号"),
    ("2026年11月3日（星期二）", D(2026, 11, 3), "YYYY年MM月D日"),
    ("2026年11月3日 14时05分", D(2026, 11, 3, 14, 5), "YYYY年MM月D日 HH时mm分"),
    ("2026年11月3日14时05分06秒", D(2026, 11, 3, 14, 5, 6), "YYYY年MM月D日HH时mm分ss秒"),
    ("2026-11-03 14:05:06.123", D(2026, 11, 3, 14, 5, 6, 123000), "YYYY-MM-DD HH:mm:ss.fff"),
    ("2026-11-3 14:05:06,5", D(2026, 11, 3, 14, 5, 6, 500000), "YYYY-MM-D HH:mm:ss,f"),
    ("2026-11-03T14:05:06+08:00", D(2026, 11, 3, 14, 5, 6), "YYYY-MM-DDTHH:mm:ss+hh:mm"),
    ("2026-11-03T06:05:06Z", D(2026, 11, 3, 14, 5, 6), "YYYY-MM-DDTHH:mm:ssZ"),
    ("2026-11-03T22:05:06-02:00", D(2026, 11, 4, 8, 5, 6), "YYYY-MM-DDTHH:mm:ss+hh:mm"),
    ("2026-11-03T14:05:06.123456+0800", D(2026, 11, 3, 14, 5, 6, 123456), "YYYY-MM-DDTHH:mm:ss.ffffff+hh:mm"),
    ("2026/11/3 下午2:05", D(2026, 11, 3, 14, 5), "YYYY/MM/D 下午H:mm"),
    ("2026/11/3 上午9:30", D(2026, 11, 3, 9, 30), "YYYY/MM/D 上午H:mm"),
    ("2026/11/3 上午12:30", D(2026, 11, 3, 0, 30), "YYYY/MM/D 上午HH:mm"),
    ("2026/11/3 晚上8点", D(2026, 11, 3, 20, 0), "YYYY/MM/D 晚上H点"),
    ("2026/11/3 中午12:10", D(2026, 11, 3, 12, 10), "YYYY/MM/D 中午HH:mm"),
    ("2026-11-03 2:05 PM", D(2026, 11, 3, 14, 5), "YYYY-MM-DD H:mm PM"),
    ("2026-11-03 2:05 pm", D(2026, 11, 3, 14, 5), "YYYY-MM-DD H:mm pm"),
    ("2026-11-03 12:05 AM", D(2026, 11, 3, 0, 5), "YYYY-MM-DD HH:mm AM"),
    ("二〇二六年十一月三日", D(2026, 11, 3), "中文数字:YYYY年MM月D日"),
    ("二〇二六年十一月三十日 下午三点", D(2026, 11, 30, 15), "中文数字:YYYY年MM月DD日 下午H点"),
    ("45964", D(2025, 11, 3), "EXCEL_SERIAL"),
    ("45964.5", D(2025, 11, 3, 12), "EXCEL_SERIAL.f"),
    ("26-11-03", D(2026, 11, 3), "YY-MM-DD"),
    ("13/11/2026", D(2026, 11, 13), "DD/MM/YYYY"),
    ("11/13/2026", D(2026, 11, 13), "MM/DD/YYYY"),
    ("20261103140506", D(2026, 11, 3, 14, 5, 6), "YYYYMMDDHHmmss"),
    ("20261103 140506", D(2026, 11, 3, 14, 5, 6), "YYYYMMDD HHmmss"),
    ("２０２６－１１－０１", D(2026, 11, 1), "YYYY-MM-DD"),
    ("  2026-1-1   8:00 ", D(2026, 1, 1, 8), "YYYY-M-D H:mm"),
])
def test_accepted_forms(text, value, form):
    got = parse_datetime(text)
    assert got.reason is None, (text, got)
    assert (got.value, got.form) == (value, form)


@pytest.mark.parametrize(("text", "reason"), [
    ("03/11/2026", "BAD_DATE_AMBIGUOUS"),       # 3 November or 11 March
    ("03-11-26", "BAD_DATE_AMBIGUOUS"),
    ("2026-02-30", "BAD_DATE_IMPOSSIBLE"),
    ("2026-13-01", "BAD_DATE_IMPOSSIBLE"),
    ("0000-00-00", "BAD_DATE_IMPOSSIBLE"),
    ("32/11/2026", "BAD_DATE_IMPOSSIBLE"),
    ("2026-11-03 25:00", "BAD_DATE_IMPOSSIBLE"),
    ("2026-11-03 上午14:00", "BAD_DATE_IMPOSSIBLE"),
    ("0001-01-01", "DATE_OUT_OF_RANGE"),
    ("9999-12-31", "DATE_OUT_OF_RANGE"),
    ("12345", "DATE_OUT_OF_RANGE"),           # a serial in 1933: not a plausible spreadsheet date
    ("待补录", "BAD_DATE"), ("不详", "BAD_DATE"), ("下午2:05", "BAD_DATE"),
    ("13800138000", "BAD_DATE"), ("2026", "BAD_DATE"), ("2026-11-03 abc", "BAD_DATE"),
])
def test_rejected_with_the_reason(text, reason):
    got = parse_datetime(text)
    assert got.value is None and got.reason == reason, (text, got)
    assert got.form is None or not any(ch.isdigit() for ch in got.form)  # a form, never the value


def test_blank_is_missing_not_bad_and_forms_never_carry_digits():
    assert parse_datetime(None) == (None, None, None)
    assert parse_datetime("   ") == (None, None, None)
    for text in ("2026-11-03T14:05:06+08:00", "45964.5", "二〇二六年十一月三日", "2026年11月3日 14时05分"):
        assert not any(ch.isdigit() for ch in parse_datetime(text).form), text


def test_rules_are_configurable():
    narrow = DateRules(min_year=2000, max_year=2030, serial_min_year=2020)
    assert parse_datetime("1999-12-31", narrow).reason == "DATE_OUT_OF_RANGE"
    assert parse_datetime("43000", narrow).reason == "DATE_OUT_OF_RANGE"   # 2017
    assert parse_datetime("26-11-03", DateRules(two_digit_min_year=2000)).reason == "BAD_DATE_AMBIGUOUS"
    assert parse_datetime("2026-11-03T00:00:00Z", DateRules(timezone="UTC")).value == D(2026, 11, 3)
    assert future_cutoff(dt.date(2026, 11, 1), 0) == D(2026, 11, 2)
    assert future_cutoff(dt.date(2026, 11, 1), 2) == D(2026, 11, 4)


def test_chinese_numerals():
    assert [cn_to_int(t) for t in ("二〇二六", "十一", "二十三", "三十一", "两", "一百零五", "一百一十", "十")] == [
        2026, 11, 23, 31, 2, 105, 110, 10]
    assert [cn_to_int(t) for t in ("一百十", "十十", "二十两", "三人", "")] == [None] * 5


AREA = ValueLimits().area()
COUNT = ValueLimits().count(50)


@pytest.mark.parametrize(("text", "value"), [
    ("85.5㎡", 85.5), ("85.5平方米", 85.5), ("85.5平", 85.5), ("85.5平米", 85.5), ("1,234.5", 1234.5),
    ("８５", 85.0), ("85.5 m²", 85.5), ("85.5M2", 85.5), ("约90平米", 90.0), (" 120 ", 120.0),
])
def test_areas(text, value):
    assert parse_number(text, AREA).value == value


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("3人", 3), ("三人", 3), ("两人", 2), ("十二", 12), ("3.0", 3), ("３", 3), ("共5名", 5), ("0", 0),
])
def test_counts(text, value):
    got = parse_number(text, COUNT)
    assert (got.value, got.reason) == (value, None)


@pytest.mark.parametrize(("text", "rules", "reason"), [
    ("-3", AREA, "OUT_OF_RANGE"), ("0", AREA, "OUT_OF_RANGE"), ("99999", AREA, "OUT_OF_RANGE"),
    ("abc", AREA, "BAD_NUMBER"), ("85,5", AREA, "BAD_NUMBER"), ("3.5", COUNT, "BAD_NUMBER"),
    ("13800138000", COUNT, "OUT_OF_RANGE"), ("-1", COUNT, "OUT_OF_RANGE"), ("51", COUNT, "OUT_OF_RANGE"),
    ("1,000", COUNT, "OUT_OF_RANGE"), ("x" * 40, COUNT, "BAD_NUMBER"),
])
def test_bad_and_out_of_range_numbers(text, rules, reason):
    got = parse_number(text, rules)
    assert got.value is None and got.reason == reason
    assert got.form is None or not any(ch.isdigit() for ch in got.form)


@pytest.mark.parametrize(("vocab", "values", "code"), [
    ("house_usage", ["住宅", "住房", "居住", "民用住宅", "住宅类", "Residential", "住 宅"], "residential"),
    ("house_usage", ["城中村自建房", "私宅", "农民房", "自建房"], "village_self_built"),
    ("house_usage", ["宿舍", "员工宿舍", "集体宿舍", "宿舍楼"], "dormitory"),
    ("house_usage", ["商业", "商铺", "商用", "门面", "商业用房", "商业类"], "commercial"),
    ("safety_severity", ["重大", "高", "严重", "重大隐患"], "major"),
    ("safety_severity", ["较大", "中"], "serious"),
    ("safety_severity", ["一般", "轻微", "低", "III级"], "minor"),
    ("relation", ["户主", "业主", "本人", "房东"], "owner"),
    ("relation", ["租户", "承租人", "租客", "tenant", "TENANT"], "tenant"),
    ("relation", ["家属", "成员", "家庭成员"], "member"),
    ("channel", ["微信", "小程序", "微信公众号", "微信申报"], "wechat"),
    ("channel", ["APP", "app", "ＡＰＰ", "APP端"], "app"),
    ("channel", ["扫码", "二维码"], "qr_code"),
    ("channel", ["上门", "窗口"], "counter"),
    ("rental_status", ["有效", "在租"], "active"),
    ("house_status", ["在用", "使用中"], "in_use"),
    ("house_legal", ["违法建筑", "违建"], "illegal"),
])
def test_vocabulary_synonyms(vocab, values, code):
    lookup = vocabularies()[vocab]
    assert {v: lookup.code(v) for v in values} == dict.fromkeys(values, code)


def test_unknown_values_and_reporting():
    v = vocabularies()
    assert v["relation"].code("房东的朋友") is None and v["house_usage"].code("厂房") is None
    assert v["channel"].code("") is None and v["channel"].code(None) is None
    shown = reportable("440301199001011234的朋友" + "很长" * 20)
    assert "1990" not in shown and len(shown) <= 25
    assert normalise("商业 用房", ("用房",)) == "商业"


def test_vocab_file_is_validated(tmp_path):
    bad = tmp_path / "vocab.yaml"
    bad.write_text("vocabularies:\n  relation:\n    codes:\n      landlord: [房东]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="missing"):
        load_vocabularies(bad)
    import yaml

    from gridlake.config import CONF_DIR
    doc = yaml.safe_load((CONF_DIR / "vocab.yaml").read_text(encoding="utf-8"))
    doc["vocabularies"]["relation"]["codes"]["landlord"] = ["房东"]
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"relation\.codes.*landlord"):
        load_vocabularies(bad)
    doc["vocabularies"]["relation"]["codes"].pop("landlord")
    doc["vocabularies"]["relation"]["codes"]["member"].append("业主")  # already owner
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="both owner and member"):
        load_vocabularies(bad)


def test_limits_file_is_validated(tmp_path):
    p = tmp_path / "values.yaml"
    p.write_text("dates:\n  min_year: 2100\n  max_year: 1900\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="values.yaml"):
        load_limits(p)
    p.write_text("numbers:\n  area_max_m2: lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="numbers.area_max_m2"):
        load_limits(p)
    assert load_limits(tmp_path / "absent.yaml") == ValueLimits()


@pytest.mark.parametrize(("raw", "digits"), [
    ("+86 138-0013-8000", "13800138000"), ("008613800138000", "13800138000"), ("86 13800138000", "13800138000"),
    ("0755-8888 6666", "075588886666"), ("(0755)88886666", "075588886666"), ("（0755）8888-6666", "075588886666"),
    ("+86 755 8888 6666", "075588886666"), ("0086 755 88886666", "075588886666"), ("+86-10-12345678", "01012345678"),
    ("0755-88886666转123", "075588886666"), ("138 0013 8000 ext 12", "13800138000"), ("１３８００１３８０００", "13800138000"),
    ("12345", None), ("861380013800", None), (None, None),
])
def test_phones(raw, digits):
    assert normalize_phone(raw) == digits
