"""The address parser's cheap checks before a costly pass: each one is a condition every match of the pass
meets, so skipping the pass when it fails changes nothing."""

from __future__ import annotations

import re

import pytest

from matching.address import normalize, parse, parse_normalized
from matching.address_lexicon import TRADITIONAL, simplified, strip_noise


def test_simplified_equals_the_whole_table_for_every_traditional_character():
    for code, target in TRADITIONAL.items():
        text = f"福田区景{chr(code)}花园3栋501"
        assert simplified(text) == text.translate(TRADITIONAL)
        assert target in simplified(text) and chr(code) not in simplified(text)
    assert simplified("福田区景田花园3栋501") == "福田区景田花园3栋501"
    assert normalize("深圳市福田區景田北路12號602") == normalize("深圳市福田区景田北路12号602")


def test_every_phone_number_is_still_removed_and_shorter_numbers_stay():
    # the phone pass runs only where seven digits stand in a row: every phone number holds them
    for phone in ("13800138000", "+8613800138000", "86-13800138000", "0755-83451234", "075583451234",
                  "020-1234567", "0201234567", "+86-0755-8345123"):
        assert strip_noise(f"景田花园3栋501室{phone}") == "景田花园3栋501室", phone
    for text in ("景田花园3栋501", "上沙村东村2坊12号602", "福华路18号501", "景田花园3栋501-123456"):
        assert strip_noise(text) == text


@pytest.mark.parametrize("text,expected", [
    ("上沙村东村二坊12号602", {"village": "上沙村", "lane": "东村2坊", "lane_no": "12", "room": "602"}),
    ("皇岗村12号301室", {"village": "皇岗村", "lane_no": "12", "room": "301"}),
    ("渔农村幸福巷3号201", {"village": "渔农村", "lane": "幸福巷", "lane_no": "3", "room": "201"}),
    ("福华路18号501", {"road": "福华路", "door_no": "18", "room": "501"}),
    ("深南大道6008号3栋2单元1203", {"road": "深南大道", "door_no": "6008", "building": "3", "unit": "2",
                                  "floor": "12", "room": "1203"}),
    ("景田花园7栋301", {"complex": "景田花园", "building": "7", "room": "301", "floor": "3"}),
    ("景田花园", {"complex": "景田花园", "building": None, "room": None}),
])
def test_the_place_and_numbers_are_read_when_their_markers_are_written(text, expected):
    got = parse(text)
    assert {k: got[k] for k in expected} == expected
    assert parse_normalized(normalize(text)) == got


def test_a_marker_written_nowhere_leaves_its_component_empty():
    got = parse("景田花园501")
    assert got["building"] is None and got["unit"] is None and got["room"] == "501"
    assert re.fullmatch(r"\d+", got["floor"] or "")
