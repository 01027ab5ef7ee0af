"""Clustering of person links (matching.person_link.cluster) on hand-made scored pairs: decisive links
before scored ones, the strongest scored link first, never two valid IDs in one person, which record
carries which explanation, and the person keys (no Spark, no EM)."""

from __future__ import annotations

import pandas as pd
import pytest

from gridlake.ids import check_digit
from gridlake.privacy import pseudonym_py
from matching.person_link import cluster, prepare_mentions
from matching.spec import load_spec

KEY = b"test-key-for-person-clustering-0123456789"
ID_A = "44030519900101123" + check_digit("44030519900101123")
ID_B = "44030519850615002" + check_digit("44030519850615002")

# level indices of the person spec: id_number [null, exact, else], id_text [null, exact, lev1, else],
# name [null, exact, pinyin, else], phone [null, exact, else], birth/sex/house [null, exact, else]
SAME_ID = {"id_number": 1, "id_text": 1, "name": 3, "phone": 0, "birth": 1, "sex": 1, "house": 0}
NAME_PHONE_HOUSE = {"id_number": 0, "id_text": 0, "name": 1, "phone": 1, "birth": 0, "sex": 0, "house": 1}


def _prepared() -> pd.DataFrame:
    # d:1 and d:2 share ID_A (d:2 with another name), p:1 carries ID_B, m:1 has no ID
    return prepare_mentions(pd.DataFrame(
        [("d:1#0", "李娜", "", ID_A, ""), ("d:2#0", "李那", "", ID_A, ""),
         ("m:1#0", "李娜", "13800000001", "", "H1"), ("p:1#0", "李娜", "13800000001", ID_B, "H1")],
        columns=["record_key", "name", "phone", "id_number", "house_code"]))


def _levels(rows: list[tuple[str, str, dict[str, int], float]]) -> pd.DataFrame:
    # compatible: the names agree (name must agree); a decisive link needs no compatibility
    return pd.DataFrame([{"_id_l": a, "_id_r": b, **lv, "_compatible": lv["name"] != 3, "_violations": "",
                          "weight": w} for a, b, lv, w in rows])


@pytest.mark.parametrize("w_id_b, w_id_a", [(30.0, 20.0), (20.0, 30.0)])
def test_strongest_link_first_and_never_two_valid_ids(w_id_b, w_id_a):
    # m:1 (no ID) links to p:1 (ID_B) and to d:1 (ID_A): the stronger link wins whatever the row order,
    # the weaker one is skipped (it would join ID_A and ID_B); the same-ID link is decisive although its
    # weight is the lowest and the names differ
    levels = _levels([("d:1#0", "m:1#0", NAME_PHONE_HOUSE, w_id_a), ("m:1#0", "p:1#0", NAME_PHONE_HOUSE, w_id_b),
                      ("d:1#0", "d:2#0", SAME_ID, 5.0)])
    res = cluster(_prepared(), levels, load_spec("person"), KEY).set_index("record_key")
    key_a, key_b = pseudonym_py(KEY, ID_A), pseudonym_py(KEY, ID_B)
    assert res.loc["d:1#0", "person_key"] == res.loc["d:2#0", "person_key"] == key_a
    assert res.loc["p:1#0", "person_key"] == key_b
    assert res.loc["m:1#0", "person_key"] == (key_b if w_id_b > w_id_a else key_a)
    assert (res["person_key"] == key_a).sum() + (res["person_key"] == key_b).sum() == 4
    # the decisive link is explained on the record not yet explained (the pair's right side), its other
    # side stays "single"; null levels are left out of the explanation
    assert res.loc["d:2#0", "method"] == "id"
    assert res.loc["d:2#0", "explanation"] == (
        "linked_to=d:1#0;id_number=exact;id_text=exact;name=else;birth=exact;sex=exact;weight=5.00")
    assert res.loc["d:1#0", "method"] == "single" and res.loc["d:1#0", "explanation"] == "single"
    winner = "p:1#0" if w_id_b > w_id_a else "m:1#0"
    other = "m:1#0" if w_id_b > w_id_a else "d:1#0"
    assert res.loc[winner, "method"] == "score" and res.loc[winner, "weight"] == 30.0
    assert res.loc[winner, "explanation"] == f"linked_to={other};name=exact;phone=exact;house=exact;weight=30.00"
    assert res["method"].tolist().count("single") == 2


def test_scored_links_below_min_weight_or_without_corroboration_do_not_link():
    name_only = {**NAME_PHONE_HOUSE, "phone": 0, "house": 0}
    levels = _levels([("m:1#0", "p:1#0", NAME_PHONE_HOUSE, 11.99), ("d:1#0", "m:1#0", name_only, 40.0)])
    res = cluster(_prepared(), levels, load_spec("person"), KEY).set_index("record_key")
    assert res["person_key"].nunique() == 3          # d:1 and d:2 apart too: no pair between them here
    assert set(res["method"]) == {"single"}
    assert res.loc["m:1#0", "person_key"] == pseudonym_py(KEY, "record:m:1#0")   # no valid ID: its record key
