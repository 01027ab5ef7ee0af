"""The faster paths of the pandas engine give the answers of the plain ones, pair for pair: levels decided
over all distinct value pairs at once (rapidfuzz ``cpdist``), a side linked with itself coded once, the
sole-bearer pass restricted to the sounds it can act on."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import pytest

from gridlake.ids import check_digit
from matching.blocking import Blocker
from matching.codes import joint_codes
from matching.compare import _level_of, levels_from_codes, pair_levels, pinyin_similarity, sounds_alike
from matching.engine import block, prepare, self_link_levels, train
from matching.person_bearer import sole_bearer_links
from matching.person_link import prepare_mentions
from matching.scoring import match_weights
from matching.spec import load_spec, spec_from_dict

LEVELS = {
    "ratio": [None, "exact", {"kind": "ratio", "threshold": 0.8}, {"kind": "ratio", "threshold": 0.5}, "else"],
    "jaro_winkler": [None, {"kind": "jaro_winkler", "threshold": 0.9}, {"kind": "jaro_winkler", "threshold": 0.7},
                     "else"],
    "levenshtein": [None, "exact", {"kind": "levenshtein", "threshold": 1}, {"kind": "levenshtein", "threshold": 3},
                    "else"],
    "prefix": [None, "exact", {"kind": "prefix", "threshold": 2}, "else"],
    "numeric_diff": [None, "exact", {"kind": "numeric_diff", "threshold": 2}, "else"],
    "pinyin": [None, "exact", "pinyin", {"kind": "pinyin", "threshold": 0.75}, "else"],
    # a fuzzy level before exact: the order of the levels decides, not their kinds
    "mixed": [None, {"kind": "levenshtein", "threshold": 1}, "exact", {"kind": "ratio", "threshold": 0.6}, "else"],
}
WORDS = ["福华路", "福華路", "富华路", "福华二路", "沙咀路", "沙嘴路", "沙尾路", "上沙村", "下沙村", "501", "502",
         "15", "1.5", "abc", "abd", "张伟", "张维", "章伟", "李娜", "李那", "欧阳晓峰", None]


@pytest.mark.parametrize("kind", sorted(LEVELS))
def test_levels_over_all_distinct_pairs_equal_the_level_of_each_pair(kind):
    comp = spec_from_dict({"name": "t", "blocking": [["v"]],
                           "comparisons": [{"name": "v", "levels": LEVELS[kind]}]}).comparisons[0]
    rng = random.Random(7)
    texts = WORDS + ["".join(rng.choice("福华路沙咀嘴村12") for _ in range(rng.randint(1, 5))) for _ in range(60)]
    pairs = list(itertools.product(texts, texts))
    left = pd.Series([p[0] for p in pairs], dtype=object)
    right = pd.Series([p[1] for p in pairs], dtype=object)
    a, b, values = joint_codes(left, right)
    cache: dict[int, bool] = {}
    want = [_level_of(comp, x, y) for x, y in pairs]
    assert levels_from_codes(comp, a, b, values, cache).tolist() == want
    assert levels_from_codes(comp, a, b, values, cache).tolist() == want      # the Python levels from the cache
    assert len(set(want)) >= 3                                                # the data reach several levels


def test_sounds_alike_is_exactly_a_pinyin_similarity_of_one():
    names = ["张伟", "章伟", "张维", "张伟伟", "李娜", "李那", "於晓乐", "于晓乐", "沙咀", "沙嘴", "沙尾", "A1", "a1", "",
             "欧阳晓峰", "欧杨晓峰"]
    for x, y in itertools.product(names, names):
        assert sounds_alike(x, y) == (pinyin_similarity(x, y) >= 1.0), (x, y)


def _id(body17: str) -> str:
    return body17 + check_digit(body17)


def _mentions(n: int, seed: int) -> pd.DataFrame:
    """Mentions of ``n`` persons, each written 1-3 times with the mistakes the person spec is built for."""
    rng = random.Random(seed)
    surnames, given = "张王李赵陈刘杨黄", "伟娜敏静磊洋勇艳杰娟涛明"
    rows = []
    for p in range(n):
        pid = _id(f"440304{1950 + p % 50}{1 + p % 12:02d}{1 + p % 28:02d}{p % 1000:03d}")
        name = rng.choice(surnames) + rng.choice(given) + (rng.choice(given) if p % 3 else "")
        phone = f"139{p:08d}"
        house = f"H{p % (n // 3 + 1)}"
        for k in range(rng.randint(1, 3)):
            i, ph, nm = pid, phone, name
            r = rng.random()
            if r < 0.3:
                i = None
            elif r < 0.4:
                i = pid[:10] + str((int(pid[10]) + 1) % 10) + pid[11:]        # a mistyped digit
            if rng.random() < 0.2:
                ph = phone[:5] + phone[6] + phone[5] + phone[7:]              # two digits swapped
            if rng.random() < 0.1:
                nm = nm.replace("伟", "维")                                  # a homophone
            rows.append((f"s:{p}-{k}#0", nm, ph if rng.random() < 0.8 else None, i, house))
    return pd.DataFrame(rows, columns=["record_key", "name", "phone", "id_number", "house_code"])


def test_a_side_linked_with_itself_gives_the_pairs_levels_and_model_of_the_materialised_path():
    spec = load_spec("person").model_copy(update={"em": load_spec("person").em.model_copy(
        update={"min_pairs": 10, "random_pairs": 2000, "max_pairs": 300})})     # max_pairs: EM samples pairs
    side = prepare(prepare_mentions(_mentions(400, seed=3)), spec, "left").drop_duplicates("_id") \
        .reset_index(drop=True)
    got, model = self_link_levels(side, spec)
    # the plain path: ids blocked, pairs materialised with their values, compared, trained, weighed
    ids = block(side, side, spec)
    ids = ids[ids["_id_l"] < ids["_id_r"]].reset_index(drop=True)
    at = pd.Index(side["_id"])
    cols = ["_id", *(c for c in side.columns if c.startswith("_cv_"))]
    pairs = pd.concat([side[cols].take(at.get_indexer(ids[f"_id_{s}"])).add_prefix(f"{s}_").reset_index(drop=True)
                       for s in ("l", "r")], axis=1)
    want = pair_levels(pairs, spec)
    want_model = train(side, side, spec, pairs_levels=want)
    want["weight"] = match_weights(want, spec, want_model)
    assert len(want) > 300 and want["_compatible"].any() and (~want["_compatible"]).any()
    pd.testing.assert_frame_equal(got, want)
    assert model.to_state() == want_model.to_state()
    # a model given is used, not retrained
    again, same = self_link_levels(side, spec, model)
    assert same is model and again["weight"].equals(got["weight"])


def test_blocking_a_side_with_itself_equals_blocking_it_with_a_copy():
    spec = load_spec("person")
    side = prepare(prepare_mentions(_mentions(300, seed=5)), spec, "left")
    lp, rp, _ = Blocker(side, side, spec).pairs()
    lq, rq, _ = Blocker(side, side.copy(), spec).pairs()
    assert len(lp) > len(side)
    assert np.array_equal(lp, lq) and np.array_equal(rp, rq)


def test_self_link_needs_distinct_ids():
    spec = load_spec("person")
    side = prepare(prepare_mentions(_mentions(5, seed=1)), spec, "left")
    with pytest.raises(ValueError, match="distinct ids"):
        self_link_levels(pd.concat([side, side], ignore_index=True), spec)


def test_sole_bearer_pass_ignores_a_sound_two_identified_persons_bear():
    """欧阳晓峰 is borne by two identified persons (namesakes): the unidentified one with the first one's
    phone is not linked, although both are examined for other sounds (李娜, 王芳) that one person solely bears."""
    id_a, id_b, id_c = _id("44030519900101123"), _id("44030519850615002"), _id("44030519700707335")
    m = prepare_mentions(pd.DataFrame(
        [("d:1#0", "欧阳晓峰", "13900001111", id_a, "H1"),     # person 0: identified, two names
         ("d:2#0", "李娜", "13900001111", id_a, "H1"),
         ("d:3#0", "欧阳晓峰", "13800002222", id_b, "H2"),     # person 2: the namesake, identified
         ("p:1#0", "欧阳晓峰", "13900001111", None, "H9"),     # person 3: unidentified, person 0's phone...
         ("p:2#0", "李娜", "13900001111", None, "H8"),         # person 4: unidentified, person 0's phone
         ("p:3#0", "王芳", "13900001111", None, "H9"),         # ...and 王芳, whose bearer never had that phone
         ("d:4#0", "王芳", "13700005555", id_c, "H5")],        # person 6: identified
        columns=["record_key", "name", "phone", "id_number", "house_code"]))
    links = sole_bearer_links(m, np.array([0, 0, 2, 3, 4, 3, 6]))
    assert [(a, b) for a, b, _ in links] == [(4, 1)]             # only 李娜: p:2 joins d:2's person
    assert links[0][2] == "name=sole_bearer;phone=own"


def test_a_partition_decides_a_query_with_its_delivered_code_among_its_candidates():
    """matching.partitioned.run_partition: a non-local query (it has a delivered code) whose code is among its
    candidates in its one main partition gets its decision there (pass FORCED, the code verified), without
    candidate pairs for the reduction; one whose code is not among them is left to the reduction."""
    import numpy as np
    import pandas as pd

    from matching.engine import parsed_addresses
    from matching.partitioned import FORCED, MAIN, plan_routes, run_partition
    from matching.scoring import initial_model
    from matching.spec import load_spec
    from schemas.address import ADDRESS_COMPONENTS

    spec = load_spec("address_to_house")

    def side(ids, texts):
        p = parsed_addresses(pd.Series(texts))
        p.insert(0, "_id", ids)
        return p[["_id", "address_norm", *ADDRESS_COMPONENTS]].astype(object).where(p.notna(), None)

    right = side(["H101", "H102", "H201"], ["福华路10号福华花园1栋101", "福华路10号福华花园1栋102",
                                            "福华路10号福华花园1栋201"])
    left = side(["Q1", "Q2"], ["福华花园1栋101", "福华花园1栋101"])
    left["_local"], left["_next"], left["_fan0"] = False, True, 1
    left["_forced_id"] = np.array(["H101", "H999"], dtype=object)   # Q2's code is no candidate here
    route = plan_routes(spec.blocking, spec)[0]
    out = run_partition(left, right, spec, initial_model(spec), route, MAIN)
    q1, q2 = out[out["_id_l"] == "Q1"], out[out["_id_l"] == "Q2"]
    assert list(q1["_kind"]) == ["d"] and int(q1["_pass"].iloc[0]) == FORCED
    assert q1["right_id"].iloc[0] == "H101" and q1["method"].iloc[0] == "scanned_code_verified"
    assert set(q2["_kind"]) == {"p", "v"} and "d" not in set(q2["_kind"])


def test_parsed_addresses_remembered_across_calls_equal_a_fresh_parse():
    """matching.engine.parsed_addresses remembers texts across calls (a Spark worker parses many batches): a
    text met again, in another call and written in the same or another way, gives what normalising and
    parsing it afresh gives, and the second call parses nothing it parsed in the first."""
    from matching import engine
    from matching.address import normalize, parse_normalized
    from schemas.address import ADDRESS_COMPONENTS

    texts = ["深圳市福田区梅林街道上梅林社区梅华路5号3栋501", "梅华路5号3栋501", "梅华路五号3栋501室", None, "  ",
             "福华路10号福华花园1栋101", "（上沙社区）沙头街道上沙村东一坊12号602"]
    first = engine.parsed_addresses(pd.Series(texts))
    before = engine._address_row.cache_info()
    again = engine.parsed_addresses(pd.Series(list(reversed(texts)) + texts[:2]))
    after = engine._address_row.cache_info()
    assert after.misses == before.misses and after.hits > before.hits
    columns = ["address_norm", *ADDRESS_COMPONENTS]
    assert list(first.columns) == columns
    for frame, order in ((first, texts), (again, list(reversed(texts)) + texts[:2])):
        for i, text in enumerate(order):
            norm = normalize(text) if isinstance(text, str) else None
            fresh = {"address_norm": norm, **(parse_normalized(norm) if norm else dict.fromkeys(ADDRESS_COMPONENTS))}
            assert frame.iloc[i].to_dict() == fresh, text
    assert first.iloc[1]["road"] == "梅华路" and first.iloc[1]["room"] == "501"
