"""Person linkage: ID parts, name levels, the never-link rule, namesakes, person keys, explanations,
the evaluation's metrics and an accuracy test on a small generated community (no Spark)."""

from __future__ import annotations

import pandas as pd
import pytest

from gridlake.ids import check_digit, normalize_id
from gridlake.privacy import pseudonym_py
from matching.compare import compare_pairs
from matching.person_link import cluster, id_parts, prepare_mentions, resolve_persons
from matching.spec import SpecError, load_spec, spec_from_dict
from tools.persons_eval import (
    bcubed,
    evaluate_persons,
    evaluate_persons_frame,
    format_report,
    pairwise_counts,
)

KEY = b"test-key-for-person-linkage-0123456789"


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


ID_A = _id("44030519900101123")    # male (17th digit odd), born 1990-01-01
ID_B = _id("44030519850615002")    # female, born 1985-06-15


def _typo(id18: str, pos: int = 15) -> str:
    return id18[:pos] + str((int(id18[pos]) + 3) % 10) + id18[pos + 1:]


def _mentions(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_key", "name", "phone", "id_number", "house_code"])


def _background(n: int = 600) -> pd.DataFrame:
    """Distinct other persons (own name, phone, house, ID): random pairs then look like a community's, so
    u is estimated as it would be on real deliveries (a handful of records alone makes every pair look alike)."""
    sur, giv = "赵钱孙周吴郑冯褚卫蒋沈韩", "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉"
    rows = []
    for i in range(n):
        name = sur[i % len(sur)] + giv[(i // len(sur)) % len(giv)] + giv[(i // (len(sur) * len(giv))) % len(giv)]
        first17 = f"4403061980{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        rows.append((f"bg:{i}#0", name, f"1590000{i:04d}", _id(first17) if i % 2 else "", f"B{i}"))
    return _mentions(rows)


def _resolve(df: pd.DataFrame) -> pd.DataFrame:
    res, _ = resolve_persons(pd.concat([df, _background()], ignore_index=True), KEY)
    return res[res["record_key"].isin(df["record_key"])].reset_index(drop=True)


def _persons(df: pd.DataFrame) -> dict[str, str]:
    res = _resolve(df)
    return dict(zip(res["record_key"], res["person_key"], strict=True))


# --- ID parts --------------------------------------------------------------------------------------
def test_id_parts_valid_15_digit_and_mistyped():
    assert id_parts(ID_A) == (ID_A, ID_A, "19900101", "M")
    id15 = ID_B[:6] + ID_B[8:17]
    assert id_parts(id15) == (ID_B, ID_B, "19850615", "F")       # GB 11643 upgrade: the same person
    bad = _typo(ID_A)
    assert normalize_id(bad)[1] == "ID_CHECKSUM"
    valid, text, birth, sex = id_parts(bad)
    assert valid is None and text == bad and birth == "19900101"     # the date survives a mistyped sequence digit
    assert id_parts("not an id")[:1] == (None,)
    assert id_parts(f" {ID_A.lower()} ")[0] == ID_A


# --- name comparisons ------------------------------------------------------------------------------
@pytest.mark.parametrize(("left", "right", "level", "compatible"), [
    ("张伟", "张伟", "exact", True),
    ("张伟", "張偉", "pinyin>=1", True),        # traditional characters
    ("张伟", "张玮", "pinyin>=1", True),        # same-sounding character
    ("张伟", "张敏", "else", False),            # another name: never the same person
    ("张伟", None, "null", True),
])
def test_name_levels(left, right, level, compatible):
    spec = load_spec("person")
    pairs = pd.DataFrame({"l_name": [left], "r_name": [right]})
    out = compare_pairs(pairs, spec)
    labels = [lv.label for lv in next(c for c in spec.comparisons if c.name == "name").levels]
    assert labels[int(out["name"].iat[0])] == level
    assert bool(out["_compatible"].iat[0]) is compatible


# --- linkage rules ---------------------------------------------------------------------------------
def test_same_valid_id_links_by_itself_and_a_15_digit_id_is_the_same():
    df = _mentions([("d:1#0", "李娜", "13800000001", ID_A, "H1"),
                    ("p:7#0", "王芳", "", ID_A[:6] + ID_A[8:17], "")])
    res = _resolve(df)
    assert res["person_key"].nunique() == 1
    assert set(res["method"]) == {"single", "id"}
    assert res["person_key"].iat[0] == pseudonym_py(KEY, ID_A)     # the key gold already uses for that ID


def test_two_different_valid_ids_never_link_even_with_name_phone_house():
    df = _mentions([("d:1#0", "李娜", "13800000001", ID_A, "H1"),
                    ("d:2#0", "李娜", "13800000001", ID_B, "H1")])
    p = _persons(df)
    assert p["d:1#0"] != p["d:2#0"]


def test_never_link_holds_through_a_record_without_an_id():
    # C (no ID) links to both A and B, who carry two different valid IDs: the stronger link wins, A and B
    # stay apart (clustering under the never-link constraint, not plain connected components)
    spec = load_spec("person")
    prepared = prepare_mentions(_mentions([("d:1#0", "李娜", "13800000001", ID_A, "H1"),
                                           ("m:5#0", "李娜", "13800000001", "", "H1"),
                                           ("d:2#0", "李娜", "13800000001", ID_B, "H1")]))
    pairs = pd.DataFrame({"_id_l": ["d:1#0", "d:2#0"], "_id_r": ["m:5#0", "m:5#0"],
                          "l_name": ["李娜"] * 2, "r_name": ["李娜"] * 2,
                          "l_phone": ["13800000001"] * 2, "r_phone": ["13800000001"] * 2})
    levels = compare_pairs(pairs, spec)
    levels.insert(0, "_id_r", pairs["_id_r"])
    levels.insert(0, "_id_l", pairs["_id_l"])
    levels["weight"] = [20.0, 25.0]
    res = cluster(prepared, levels, spec, KEY).set_index("record_key")["person_key"]
    assert res["d:1#0"] != res["d:2#0"]
    assert res["m:5#0"] == res["d:2#0"] == pseudonym_py(KEY, ID_B)     # the stronger link


def test_namesakes_without_corroboration_never_link():
    df = _mentions([("p:1#0", "王伟", "", "", "H1"), ("p:2#0", "王伟", "", "", "H2"),
                    ("p:3#0", "王伟", "13900000003", "", ""), ("p:4#0", "王伟", "13900000004", "", "")])
    assert len(set(_persons(df).values())) == 4


def test_mistyped_id_links_on_name_and_phone_with_explanation():
    df = _mentions([("d:1#0", "李娜", "13800000001", ID_A, "H1"),
                    ("d:9#0", "李娜", "138 0000 0001", _typo(ID_A), "H1"),
                    ("p:3#0", "李娜", "+86 13800000001", "", "")])
    res = _resolve(df)
    assert res["person_key"].nunique() == 1
    assert res["person_key"].iat[0] == pseudonym_py(KEY, ID_A)
    linked = res[res["method"] == "score"]
    assert len(linked) == 2
    text = ";".join(linked["explanation"])
    assert "id_text=levenshtein<=1" in text and "phone=exact" in text and "weight=" in text
    for secret in (ID_A, _typo(ID_A), "李娜", "13800000001"):
        assert secret not in ";".join(res["explanation"])


def test_family_member_sharing_phone_and_house_is_not_linked():
    df = _mentions([("d:1#0", "张伟", "13800000001", ID_A, "H1"), ("p:2#0", "张敏", "13800000001", "", "H1")])
    p = _persons(df)
    assert p["d:1#0"] != p["p:2#0"]


def test_person_key_without_valid_id_is_stable_under_row_order():
    rows = [("p:2#0", "陈静", "13700000002", "", "H3"), ("p:1#0", "陳靜", "13700000002", "", "H3")]
    a, b = _persons(_mentions(rows)), _persons(_mentions(rows[::-1]))
    assert a == b and a["p:1#0"] == a["p:2#0"] == pseudonym_py(KEY, "record:p:1#0")


def test_spec_rejects_unknown_decisive_comparison():
    with pytest.raises(SpecError, match="decision.decisive"):
        spec_from_dict({"name": "x", "blocking": [["a"]], "comparisons": [{"name": "a", "levels": ["exact", "else"]}],
                        "decision": {"decisive": ["b"]}})


# --- evaluation metrics ----------------------------------------------------------------------------
def test_pairwise_and_bcubed_on_a_hand_example():
    pred = pd.Series(["x", "x", "x", "y"])
    true = pd.Series(["a", "a", "b", "b"])
    pw = pairwise_counts(pred, true)
    assert (pw["tp"], pw["predicted"], pw["true"]) == (1, 3, 2)
    assert pw["precision"] == pytest.approx(1 / 3) and pw["recall"] == pytest.approx(0.5, abs=1e-6)
    b3 = bcubed(pred, true)
    assert b3["precision"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4, abs=1e-6)
    assert b3["recall"] == pytest.approx((1 + 1 + 0.5 + 0.5) / 4, abs=1e-6)
    assert b3["exact_clusters"] == 0.0
    only = pairwise_counts(pred, true, involve=pd.Series([False, False, True, True]).to_numpy())
    assert (only["tp"], only["predicted"], only["true"]) == (0, 2, 1)


def test_evaluation_counts_links_between_different_valid_ids():
    truth = pd.DataFrame({"record_key": ["a", "b"], "person_id": ["P1", "P2"], "noise": ["", "namesake"],
                          "id_number": [ID_A, ID_B]})
    res = pd.DataFrame({"record_key": ["a", "b"], "person_key": ["k", "k"]})
    report = evaluate_persons_frame(res, truth)
    assert report["different_valid_id_links"] == 1
    assert report["pairwise"]["precision"] == 0.0


# --- accuracy on a generated community -------------------------------------------------------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from tools.generate.config import load_gen_config
    from tools.generate.run import generate

    out = tmp_path_factory.mktemp("persons")
    generate(load_gen_config("community", days=3, seed=71318), out)
    return out


def test_generated_mentions_carry_their_noise(generated):
    df = pd.read_parquet(generated / "truth" / "person_mentions.parquet")
    kinds = df["noise"].str.split(";")
    for kind in ("id_typo", "id15", "id_missing", "name_traditional", "name_homophone", "family_phone", "namesake"):
        assert kinds.apply(lambda ks, k=kind: k in ks).sum() > 0, kind
    typo = df[kinds.apply(lambda ks: "id_typo" in ks)]
    assert all(normalize_id(v)[1] == "ID_CHECKSUM" for v in typo["id_number"])
    legacy = df[kinds.apply(lambda ks: "id15" in ks)]
    assert (legacy["id_number"].apply(lambda v: normalize_id(v)[0]) == legacy["person_id"]).all()
    clean = df[df["id_number"].apply(lambda v: normalize_id(v)[0] is not None)]
    assert (clean["id_number"].apply(lambda v: normalize_id(v)[0]) == clean["person_id"]).all()
    namesake = df[kinds.apply(lambda ks: "namesake" in ks)]
    assert not namesake["person_id"].isin(df.loc[~df.index.isin(namesake.index), "person_id"]).any()
    assert df["record_key"].is_unique


def test_accuracy_on_a_generated_community(generated):
    report = evaluate_persons(generated, KEY)
    assert report["different_valid_id_links"] == 0
    no_id = report["pairwise_without_valid_id"]
    assert no_id["true"] >= 50
    assert no_id["precision"] >= 0.99 and no_id["recall"] >= 0.95
    assert report["pairwise"]["precision"] >= 0.99 and report["pairwise"]["recall"] >= 0.95
    assert report["by_noise"]["id_typo"]["recall"] >= 0.95
    assert report["by_noise"]["namesake"]["predicted"] == 0          # no namesake joined another person
    text = format_report(report)
    assert "without valid ID" in text and "noise id_typo" in text


@pytest.mark.parametrize(("persons", "message"), [
    ({"id_typo_rate": 1.5}, "noise.persons.id_typo_rate"),
    ({"id_present": {"police": 0.5}}, "id_present.police: unknown source"),
    ({"namesake": 0.1}, "noise.persons.namesake"),
    ("often", "noise.persons: expected a mapping"),
])
def test_person_noise_is_validated_with_the_key_named(persons, message):
    from gridlake.config import ConfigError
    from tools.generate.config import person_noise

    with pytest.raises(ConfigError, match=message):
        person_noise({"persons": persons})
    assert person_noise({}).id_typo_rate == 0.04


def test_traditional_and_homophone_names_sound_the_same():
    from matching.compare import pinyin_similarity
    from tools.generate.person_mentions import homophone, to_traditional

    assert to_traditional("张伟") == "張偉"
    alt = homophone("李静", 0.3)
    assert alt is not None and alt != "李静" and alt[0] == "李"
    assert pinyin_similarity(alt, "李静") == 1.0
    assert homophone("欧阳思雨", 0.9)[:2] == "欧阳"          # the compound surname is kept
