"""Person linkage over only what a night touched equals linking every mention again with the same model
(matching.person_incremental), night after night: additions, removals, changed names, phones, IDs and houses,
a block crossing the cap both ways, a sound gaining a second identified bearer, and a night without change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridlake.ids import check_digit
from matching.person_incremental import Previous, link_persons, links_before_bearer, state_hash_key
from matching.spec import load_spec

KEY = b"test-key-for-incremental-person-linkage-0123"
HASH_KEY = state_hash_key(KEY)
COLUMNS = ["record_key", "name", "phone", "id_number", "house_code"]


@pytest.fixture(scope="module")
def mentions(tmp_path_factory) -> pd.DataFrame:
    from tools.generate.config import load_gen_config
    from tools.generate.run import generate

    out = tmp_path_factory.mktemp("deliveries")
    generate(load_gen_config("community", days=2, seed=64021), out)
    truth = pd.read_parquet(out / "truth" / "person_mentions.parquet")
    return truth[COLUMNS].drop_duplicates("record_key").reset_index(drop=True)


def _night(linked, night: pd.DataFrame, spec, model):
    """Tonight linked incrementally from ``linked`` and in full with the same model: the same rows."""
    previous = Previous(linked.state, links_before_bearer(linked.persons))
    inc = link_persons(night, KEY, spec, model, previous, HASH_KEY)
    full = link_persons(night, KEY, spec, model, None, HASH_KEY)
    assert inc.stats["mode"] == "incremental" and full.stats["mode"] == "full"
    pd.testing.assert_frame_equal(inc.persons, full.persons)
    pd.testing.assert_frame_equal(inc.state, full.state)
    return inc


def test_incremental_nights_equal_a_full_linkage_with_the_same_model(mentions):
    spec = load_spec("person")
    pool = mentions.sample(frac=1.0, random_state=3).reset_index(drop=True)
    first = link_persons(pool.iloc[: int(0.8 * len(pool))], KEY, spec, None, None, HASH_KEY)
    model = first.model
    assert first.stats["mode"] == "full" and first.stats["reason"] == "no saved model"
    night = pool.iloc[: int(0.8 * len(pool))].copy()
    linked = first

    # 1. a delivery: 2% gone, 4% new, 3% with another phone, house, name or no ID
    night = night.drop(night.sample(frac=0.02, random_state=1).index)
    night = pd.concat([night, pool.iloc[int(0.8 * len(pool)): int(0.84 * len(pool))]])
    idx = night.sample(frac=0.03, random_state=2).index.to_numpy()
    parts = np.array_split(idx, 4)
    night.loc[parts[0], "phone"] = night["phone"].sample(len(parts[0]), random_state=4).to_numpy()
    night.loc[parts[1], "house_code"] = night["house_code"].sample(len(parts[1]), random_state=5).to_numpy()
    night.loc[parts[2], "name"] = night["name"].sample(len(parts[2]), random_state=6).to_numpy()
    night.loc[parts[3], "id_number"] = None
    linked = _night(linked, night, spec, model)
    assert 0 < linked.stats["relinked"] < 0.5 * len(night)

    # 2. nothing changed: nothing linked again
    linked = _night(linked, night.sample(frac=1.0, random_state=7), spec, model)
    assert linked.stats["relinked"] == 0 and linked.stats["changed"] == 0

    # 3. one phone given by 62 mentions: a block over the cap of 60 (its pairs gone) ...
    crowd = night.sample(62, random_state=8).index
    night.loc[crowd, "phone"] = "13512345678"
    linked = _night(linked, night, spec, model)
    # ... and back under it when three of them give another phone (its 59 mentions pair again)
    night.loc[crowd[:3], "phone"] = "13687654321"
    linked = _night(linked, night, spec, model)
    assert linked.stats["relinked"] >= 59

    # 4. thirty mentions without name, ID or house share one phone (they pair on it alone) ...
    nameless = pd.DataFrame({"record_key": [f"mediation_cases:NL{i}#0" for i in range(30)], "name": None,
                             "phone": "13999990000", "id_number": None, "house_code": "440304000000000001"})
    night = pd.concat([night, nameless], ignore_index=True)
    linked = _night(linked, night, spec, model)
    paired = linked.persons[linked.persons["record_key"].str.startswith("mediation_cases:NL")]
    assert paired["person_key"].nunique() < 30
    # ... until 35 more mentions give that phone: over the cap, the thirty unchanged ones lose their pairs
    night.loc[night.sample(35, random_state=10).index, "phone"] = "13999990000"
    linked = _night(linked, night, spec, model)
    alone = linked.persons[linked.persons["record_key"].str.startswith("mediation_cases:NL")]
    assert alone["person_key"].nunique() == 30

    # 5. a name borne by one identified person gains a second identified bearer at another house
    bearer = linked.persons[linked.persons["method"] == "sole_bearer"]
    name = (night.set_index("record_key").loc[bearer["record_key"].iloc[0], "name"] if len(bearer)
            else night["name"].iloc[0])
    newcomer = {"record_key": "police_incidents:NEW1#0", "name": name, "phone": "13800000001",
                "id_number": "44030519770707123" + check_digit("44030519770707123"), "house_code": "440304999999999999"}
    night = pd.concat([night, pd.DataFrame([newcomer])], ignore_index=True)
    linked = _night(linked, night, spec, model)

    # 6. more than a fifth of the mentions changed: linked in full
    big = night.copy()
    big.loc[big.sample(frac=0.3, random_state=9).index, "house_code"] = None
    again = link_persons(big, KEY, spec, model, Previous(linked.state, links_before_bearer(linked.persons)),
                         HASH_KEY)
    assert again.stats["mode"] == "full" and "mentions changed" in again.stats["reason"]


def test_the_state_holds_no_name_phone_or_id(mentions):
    spec = load_spec("person")
    linked = link_persons(mentions, KEY, spec, None, None, HASH_KEY)
    text = set(linked.state.astype(str).to_numpy().ravel().tolist())
    for col in ("name", "phone", "id_number"):
        values = {v for v in mentions[col].dropna().astype(str) if v}
        assert not values & text, col
        assert not any(v in t for v in list(values)[:200] for t in list(text)[:2000]), col
    assert list(linked.state.columns)[:2] == ["record_key", "input_hash"]
    # another deployment's key hashes the same values differently
    other = link_persons(mentions, KEY, spec, linked.model, None, state_hash_key(b"another-deployment-key-0123456789"))
    assert not (other.state["input_hash"] == linked.state["input_hash"]).any()


def test_a_full_linkage_hashing_its_state_in_a_child_gives_the_same_linkage(mentions):
    """``beside``: the state's hashes come from a forked child (gridlake.forked) while this process links; the
    persons, the state and the model are those of a linkage that hashed them itself, first night or not."""
    spec = load_spec("person")
    here = link_persons(mentions, KEY, spec, None, None, HASH_KEY)
    there = link_persons(mentions, KEY, spec, None, None, HASH_KEY, beside=True)
    assert there.stats.pop("state_hashed_beside") is True and here.stats.pop("state_hashed_beside") is False
    pd.testing.assert_frame_equal(here.persons, there.persons)
    pd.testing.assert_frame_equal(here.state, there.state)
    assert here.model.to_state() == there.model.to_state() and here.stats == there.stats
    # a full linkage of a later night (too much changed) hashes its inputs before it knows: the child takes them
    night = mentions.sample(frac=0.5, random_state=11)
    previous = Previous(here.state, links_before_bearer(here.persons))
    again = [link_persons(night, KEY, spec, here.model, previous, HASH_KEY, beside=b) for b in (False, True)]
    assert [a.stats["mode"] for a in again] == ["full", "full"] and again[1].stats["state_hashed_beside"]
    pd.testing.assert_frame_equal(again[0].persons, again[1].persons)
    pd.testing.assert_frame_equal(again[0].state, again[1].state)


def test_a_linkage_that_fails_leaves_no_hashing_child(mentions, monkeypatch):
    """A long-lived process (the stage server) keeps no child blocked on its pipe after a failed linkage."""
    import multiprocessing

    import matching.person_incremental as pi

    def broken(*args, **kwargs):
        raise RuntimeError("linkage failed")

    monkeypatch.setattr(pi, "scored_pairs", broken)
    with pytest.raises(RuntimeError, match="linkage failed"):
        link_persons(mentions, KEY, load_spec("person"), None, None, HASH_KEY, beside=True)
    assert multiprocessing.active_children() == []


def test_a_mentions_hashes_see_values_not_how_a_missing_one_is_written():
    """The state's hashes are of values: a missing value is the same whether None, NaN or NA (the frames a night
    builds may hold either), and any changed value changes the input hash."""
    from matching.person_incremental import PREPARED, block_hashes, input_hashes

    spec = load_spec("person")
    base = {c: ["x1", "x2", "x3"] for c in PREPARED}
    a = pd.DataFrame({"record_key": ["r1", "r2", "r3"], **base}, dtype=object)
    b = a.copy()
    a.loc[0, "phone"], b.loc[0, "phone"] = None, np.nan
    a.loc[1, "house_code"], b.loc[1, "house_code"] = pd.NA, None
    key = state_hash_key(b"test-only")
    assert (input_hashes(a, key) == input_hashes(b, key)).all()
    ha, hb = block_hashes(a, spec, key), block_hashes(b, spec, key)
    assert all((ha[k] == hb[k]).all() for k in ha)
    c = b.copy()
    c.loc[2, "name"] = "x4"
    assert (input_hashes(c, key) != input_hashes(b, key)).tolist() == [False, False, True]
    assert (input_hashes(a, key) % 2 == 1).all()   # odd: never the missing key's NULL_HASH
