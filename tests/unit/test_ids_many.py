"""ID numbers and phones on arrays (gridlake.ids.normalize_ids / normalize_phones, and person linkage's
id_parts_many) give, value by value, what the one-value functions give: on the forms departments write
(full-width digits, spaces, a lowercase x, 15-digit legacy numbers, impossible dates, wrong check
characters) and on values that are not IDs at all."""

from __future__ import annotations

import random

import numpy as np
import pytest

from gridlake.ids import check_digit, normalize_id, normalize_ids, normalize_phone, normalize_phones
from matching.person_link import id_parts, id_parts_many


def _id_like(rng: random.Random) -> str | None:
    r = rng.random()
    if r < 0.6:   # 18 characters: area, a century that may be out of range, a month and day that may be impossible
        first = (f"{rng.randint(0, 999999):06d}{rng.choice(['19', '20', '18', '21'])}{rng.randint(0, 99):02d}"
                 f"{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}{rng.randint(0, 999):03d}")
        v = first + (check_digit(first) if rng.random() < 0.8 else rng.choice("0123456789X"))
        if rng.random() < 0.05:
            v = v.lower()
        if rng.random() < 0.05:
            v = " " + v[:9] + " " + v[9:]
        if rng.random() < 0.05:
            v = v.replace("1", "１")   # full-width
        return v
    if r < 0.75:  # legacy 15 digits
        return (f"{rng.randint(100000, 999999)}{rng.randint(0, 99):02d}{rng.randint(0, 13):02d}"
                f"{rng.randint(0, 32):02d}{rng.randint(0, 999):03d}")
    return rng.choice([None, "", "   ", "abc", "身份证", "11010519491231002", "1101051949123100211",
                       "11010519490229001X", "11010520000229001X", "11010519491231002x", "11010519491231002Ｘ"])


def _phone_like(rng: random.Random) -> str | None:
    if rng.random() < 0.7:
        return f"1{rng.randint(0, 9)}{rng.randint(0, 999999999):09d}"
    return rng.choice([None, "", "+86 138 0013 8000", "0086-13800138000", "(0755) 8888-6666", "13800138000转12",
                       "8613800138000", "1380013800", "138001380001", "１３８００１３８０００", "12345678901",
                       "23800138000", "138 0013 8000", "138-0013-8000 ext 5"])


@pytest.fixture(scope="module")
def ids() -> list[str | None]:
    rng = random.Random(20141)
    return [_id_like(rng) for _ in range(30_000)]


def test_normalize_ids_equals_normalize_id_value_by_value(ids):
    valid, reasons = normalize_ids(np.array(ids, dtype=object))
    got = list(zip(valid.tolist(), reasons.tolist(), strict=True))
    assert got == [normalize_id(v) for v in ids]
    # the sample holds every outcome, so each branch was compared
    assert {r for _, r in got} >= {None, "ID_MISSING", "ID_FORMAT", "ID_CHECKSUM"}


def test_id_parts_many_equals_id_parts_value_by_value(ids):
    parts = id_parts_many(np.array(ids, dtype=object))
    got = list(zip(*(p.tolist() for p in parts), strict=True))
    assert got == [id_parts(v) for v in ids]
    # valid IDs (right check character) born on 29 February: a common year's is no date (no birth, no sex)
    common, leap = "11010519490229001", "11010520000229001"
    feb29 = id_parts_many(np.array([common + check_digit(common), leap + check_digit(leap)], dtype=object))
    assert feb29[0].tolist() == [common + check_digit(common), leap + check_digit(leap)]
    assert feb29[2].tolist() == [None, "20000229"] and feb29[3].tolist() == [None, "M"]


def test_normalize_phones_equals_normalize_phone_value_by_value():
    rng = random.Random(7)
    phones = [_phone_like(rng) for _ in range(20_000)]
    got = normalize_phones(np.array(phones, dtype=object)).tolist()
    assert got == [normalize_phone(v) for v in phones]
    assert any(g is None for g in got) and any(g is not None and g.startswith("0") for g in got)


def test_empty_arrays():
    assert normalize_ids(np.array([], dtype=object))[0].shape == (0,)
    assert normalize_phones(np.array([], dtype=object)).shape == (0,)
    assert [p.shape for p in id_parts_many(np.array([], dtype=object))] == [(0,)] * 4
