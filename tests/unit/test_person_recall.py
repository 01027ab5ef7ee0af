"""Recall on person mentions without a valid ID (issue 21), no Spark: names compared in simplified characters
(OpenCC t2s) and without separators, and the sole-bearer pass (matching/person_bearer.py) with what must stop
it: a common name, two identified bearers, a phone never seen with the bearer."""

from __future__ import annotations

import pandas as pd

from gridlake.ids import check_digit, normalize_id, normalize_phone
from matching.person_link import canonical_name, name_sound, resolve_persons

KEY = b"test-key-for-person-recall-0123456789abc"


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


def _background(n: int = 500) -> list[dict]:
    """Identified residents whose names share 12 surnames and 20 given-name characters (a skewed name pool)."""
    sur, giv = "赵钱孙周吴郑冯褚卫蒋沈韩", "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉"
    return [{"record_key": f"declarations:BG{i}#0",
             "name": sur[i % len(sur)] + giv[(i // len(sur)) % len(giv)] + giv[(i // (len(sur) * len(giv))) % len(giv)],
             "phone": f"1590000{i:04d}", "id_number": _id(f"4403061980{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"),
             "house_code": f"B{i}"} for i in range(n)]


def _m(key: str, name: str, phone: str | None, id_number: str | None, house: str | None) -> dict:
    return {"record_key": key, "name": name, "phone": phone, "id_number": id_number, "house_code": house}


def _resolve(rows: list[dict]) -> pd.DataFrame:
    res, _ = resolve_persons(pd.DataFrame(rows + _background()), KEY)
    return res.set_index("record_key")


ID_A = _id("44030519900101123")
ID_B = _id("44030419850505224")


def test_canonical_name_is_simplified_without_separators():
    assert canonical_name("於曉樂") == canonical_name("于晓乐") == "于晓乐"
    assert canonical_name("張 偉") == canonical_name("张·伟") == canonical_name("张伟") == "张伟"
    assert canonical_name("欧阳 晓峰") == "欧阳晓峰" and canonical_name("  ") is None
    # the heteronym 於 (yu / wu) no longer gives the traditional spelling another sound key than 于
    assert name_sound(canonical_name("於曉樂")) == name_sound("于晓乐")


def test_traditional_heteronym_name_links_at_the_same_house():
    """A police record names 於曉樂 (no ID, no phone) at the house where 于晓乐 declared: blocked on sound +
    house, compared as the same name (before: its sound key began with 'wu', it was never a candidate)."""
    res = _resolve([_m("declarations:D1#0", "于晓乐", "13900001111", ID_A, "H1"),
                    _m("police_incidents:P1#0", "於曉樂", None, None, "H1")])
    assert res.loc["police_incidents:P1#0", "person_key"] == res.loc["declarations:D1#0", "person_key"]
    linked = res.loc[["police_incidents:P1#0", "declarations:D1#0"]]
    explained = linked[linked["method"] == "score"]
    assert len(explained) == 1 and "name=exact" in explained["explanation"].iloc[0]


def test_rare_name_alone_never_joins_its_sole_identified_bearer():
    """Only the name agrees (no phone, no ID, another house): however rare the name, no link (a namesake
    without an ID looks exactly the same)."""
    res = _resolve([_m("declarations:D1#0", "欧阳晓峰", "13900001111", ID_A, "H1"),
                    _m("police_incidents:P1#0", "欧阳 晓峰", None, None, "H9")])
    p = res.loc["police_incidents:P1#0"]
    assert p.person_key != res.loc["declarations:D1#0", "person_key"]
    assert p.method == "single"


def test_common_name_alone_never_links():
    """赵甲: a two-character name of a frequent surname and character; a namesake is likely, so no link."""
    res = _resolve([_m("declarations:D1#0", "赵甲", "13900001111", ID_A, "H1"),
                    _m("police_incidents:P1#0", "赵甲", None, None, "H9")])
    assert res.loc["police_incidents:P1#0", "person_key"] != res.loc["declarations:D1#0", "person_key"]


def test_two_identified_bearers_stop_the_name():
    res = _resolve([_m("declarations:D1#0", "欧阳晓峰", "13900001111", ID_A, "H1"),
                    _m("declarations:D2#0", "欧阳晓峰", "13900002222", ID_B, "H2"),
                    _m("police_incidents:P1#0", "欧阳晓峰", None, None, "H9")])
    keys = res["person_key"]
    assert keys["declarations:D1#0"] != keys["declarations:D2#0"]
    assert keys["police_incidents:P1#0"] not in {keys["declarations:D1#0"], keys["declarations:D2#0"]}


def test_phone_decides_the_sole_bearer():
    """A household member's phone (seen at the bearer's house) or the bearer's with two digits swapped
    links; a phone never seen with the bearer (someone else's) stops it."""
    res = _resolve([_m("declarations:D1#0", "欧阳晓峰", "13900001111", ID_A, "H1"),
                    _m("declarations:D3#0", "钱丙丁", "13800003333", _id("44030419700707335"), "H1"),
                    _m("police_incidents:P1#0", "欧阳晓峰", "13800003333", None, "H9"),
                    _m("mediation_cases:M1#0", "欧阳晓峰", "13900010111", None, "H8"),
                    _m("police_incidents:P2#0", "欧阳晓峰", "18612345678", None, "H7")])
    bearer = res.loc["declarations:D1#0", "person_key"]
    assert res.loc["police_incidents:P1#0", "person_key"] == bearer
    assert "phone=household" in res.loc["police_incidents:P1#0", "explanation"]
    assert res.loc["mediation_cases:M1#0", "person_key"] == bearer
    assert res.loc["police_incidents:P2#0", "person_key"] != bearer


def test_second_model_forms_of_ids_and_phones_load():
    """The second person noise writes IDs and phones the ways the loaders must accept."""
    from tools.generate.person_mentions import landline

    fw = ID_A.translate(str.maketrans("0123456789X", "０１２３４５６７８９ｘ"))
    assert normalize_id(fw) == (ID_A, None)
    assert normalize_id(f"{ID_A[:6]} {ID_A[6:14]} {ID_A[14:]}") == (ID_A, None)
    local = landline("440304000000000123")
    assert len(local) == 8 and local[0] in "2345678"
    assert normalize_phone(f"(0755){local}") == normalize_phone(f"0755-{local}") == "0755" + local


def test_second_model_selects_its_own_person_noise():
    from tools.generate.config import person_noise

    noise = {"persons": {"landline_rate": 0.0}, "persons_second": {"landline_rate": 0.06, "id15_rate": 0.03}}
    assert person_noise({**noise, "model": "second"}).landline_rate == 0.06
    assert person_noise({**noise, "model": "default"}).landline_rate == 0.0
    assert person_noise({"model": "second", "persons": {"id15_rate": 0.05}}).id15_rate == 0.05
