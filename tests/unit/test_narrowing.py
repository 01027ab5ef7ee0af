"""The plain components records are narrowed by before an incremental night's blocking, and when the
narrowing declines (no Spark session)."""

from __future__ import annotations

import re
from pathlib import Path

from pyspark.sql import Row

from matching.narrowing import narrowing_condition, plain_components, transformed_columns
from matching.spec import load_spec

ROW = {"_id_r": "H1", "address_norm": "x", "complex": "福华花园", "building": "3", "room": "501", "village": None,
       "lane": None, "lane_no": None, "road": None, "door_no": None, "community": None, "unit": None}


def test_plain_components_leave_out_slices_and_transformed_columns():
    spec = load_spec("address_to_house")
    transformed = transformed_columns(spec)
    assert {"road", "complex", "village", "lane"} <= transformed
    assert not {"building", "room", "lane_no", "community"} & transformed
    assert plain_components(("complex", "building", "room"), transformed) == ["building", "room"]
    assert plain_components(("complex[:2]", "building", "room"), transformed) == ["building", "room"]
    assert plain_components(("village", "lane", "lane_no", "room"), transformed) == ["lane_no", "room"]
    assert plain_components(("complex[-2:]",), transformed) == []


def test_no_narrowing_when_a_key_could_split_otherwise_or_a_rule_has_nothing_plain():
    spec = load_spec("address_to_house")
    rules = list(spec.blocking) + list(spec.blocking_fallback or ())
    # a control character (the keys' separator is one) in a value: a left key could then agree with a right
    # one split at another place
    assert narrowing_condition([Row(**{**ROW, "room": "5\x1f01"})], rules, spec) is None
    assert narrowing_condition([Row(**{**ROW, "complex": "福华\x1e花园"})], rules, spec) is None
    # a plain value that is not text is compared as Spark casts it, which Python need not print alike
    assert narrowing_condition([Row(**{**ROW, "building": 3})], rules, spec) is None
    # a rule of transformed or sliced components only: nothing to narrow by
    assert narrowing_condition([Row(**ROW)], [*rules, ("complex[:2]",)], spec) is None
    assert narrowing_condition([Row(**ROW)], [], spec) is None


def test_the_blocking_keys_separator_is_a_control_character():
    """narrowing_condition's proof needs matching.spark to join key components with a control character."""
    text = Path(__file__).resolve().parents[2].joinpath("matching", "spark.py").read_text(encoding="utf-8")
    seps = re.findall(r'F\.concat_ws\("(\\x[0-9a-f]{2})", \*cols\)', text)
    assert seps == ["\\x1f"]


def test_a_records_key_is_read_back_from_its_id():
    """records_to_relink splits ``source|record_id`` at the first bar: no source's name may hold one."""
    from jobs.matching.runner import RECORD_SOURCES

    assert RECORD_SOURCES and not any("|" in s for s in RECORD_SOURCES)
