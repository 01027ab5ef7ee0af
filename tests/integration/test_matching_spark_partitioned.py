"""The partitioned Spark linkage (``matching.spark.link_spark``) answers as the pandas engine
(``matching.engine.link``), record by record, given the same model: small generated inline data."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

pytestmark = pytest.mark.spark

COMPLEXES = ["福华花园", "福华家园", "金秀大厦", "沙嘴新村", "海滨广场"]
ROADS = ["福华路", "金秀路", "沙嘴路"]
VILLAGES = [("上沙村", "东村"), ("下沙村", "西村")]


def _district(seed: int = 20141) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(registry[house_code, address], queries[id, address, true_code]): a few complexes, roads and village
    lanes with shared building and room numbers, and texts written as people write them (numerals, missing
    parts, typos, rooms not in the registry, no room at all, a lane and a building in one text)."""
    rng = random.Random(seed)
    houses = []
    for c, name in enumerate(COMPLEXES):
        road = ROADS[c % len(ROADS)]
        for b in range(1, 4):
            for floor in range(1, 4):
                for r in range(1, 3):
                    houses.append((f"C{c}{b}{floor}{r:02d}", f"沙头街道新华社区{road}{10 + c}号{name}{b}栋{floor}{r:02d}",
                                   dict(complex=name, road=road, door=10 + c, b=b, room=f"{floor}{r:02d}")))
    for v, (village, lane_prefix) in enumerate(VILLAGES):
        for lane in range(1, 3):
            for no in range(1, 4):
                for room in ("101", "201"):
                    houses.append((f"V{v}{lane}{no}{room}", f"沙头街道上沙社区{village}{lane_prefix}{lane}坊{no}号{room}",
                                   dict(village=village, lane=f"{lane_prefix}{lane}坊", no=no, room=room)))
    registry = pd.DataFrame([(h, a) for h, a, _ in houses], columns=["house_code", "address"])
    digits = "零一二三四五六七八九"
    queries = []
    for i in range(260):
        code, addr, p = houses[rng.randrange(len(houses))]
        style = rng.randrange(9)
        if "complex" in p:
            name = p["complex"]
            if style == 1:
                name = name.replace("华", "化")          # homophone typo
            room = p["room"]
            if style == 2:
                room = room[:-1] + "9"                   # a room not in the registry
            text = f"{name}{p['b']}栋{room}"
            if style == 3:
                text = f"{p['road']}{p['door']}号{p['b']}栋{room}"
            elif style == 4:
                text = f"{name}{digits[p['b']]}栋{''.join(digits[int(d)] for d in room)}"
            elif style == 5:
                text = f"{name}{p['b']}栋"               # no room: fallback rules
            elif style == 6:
                text = f"{p['b']}栋{room}"               # no name: capped rules
            elif style == 7:
                text = f"沙头街道新华社区{name}{p['b']}栋{room}（出租屋）"
        else:
            text = f"{p['village']}{p['lane']}{p['no']}号{p['room']}"
            if style in (1, 5):
                text = f"{p['village']}{p['lane']}{p['no']}号"              # no room
            elif style == 2:
                text = f"{p['lane']}{p['no']}号{p['room']}"
            elif style == 3:
                text = f"{p['village']}{p['lane']}{p['no']}号3栋"          # a lane and a building: two routes
            elif style == 6:
                text = f"{p['no']}号{p['room']}"
        queries.append((f"Q{i:03d}", text, code))
    queries.append(("Q900", None, None))
    queries.append(("Q901", "无法识别的地址", None))
    return registry, pd.DataFrame(queries, columns=["id", "address", "true_code"])


def _spark_side(spark, pdf: pd.DataFrame, id_col: str):
    from matching.engine import parsed_addresses
    from schemas.address import ADDRESS_COMPONENTS

    parsed = parsed_addresses(pdf["address"])
    parsed.insert(0, "_id", pdf[id_col].astype(str).to_numpy())
    cols = ["_id", "address_norm", *ADDRESS_COMPONENTS]
    parsed = parsed[cols].astype(object).where(parsed[cols].notna(), None)
    return spark.createDataFrame(parsed, ", ".join(f"`{c}` string" for c in cols))


def _engine(registry, queries, spec, model=None, top_k: int = 0):
    from matching.engine import link

    return link(queries[["id", "address"]], registry, spec, model, top_k=top_k)


def _by_id(df: pd.DataFrame, id_col: str) -> dict[str, tuple]:
    out = {}
    for d in df.to_dict("records"):
        score = d["score"]
        out[str(d[id_col])] = (d["right_id"], d["method"], d["explanation"],
                               None if score is None or (isinstance(score, float) and math.isnan(score)) else score)
    return out


def _assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k, (rid, method, expl, score) in want.items():
        g = got[k]
        assert (g[0], g[1], g[2]) == (rid, method, expl), k
        assert (g[3] is None) == (score is None), k
        if score is not None:
            assert abs(g[3] - score) <= 1e-9, k


@pytest.fixture(scope="module")
def district():
    return _district()


@pytest.mark.parametrize(("cap", "buckets"), [(None, 1), (40, 3), (3, 2)])
def test_partitioned_spark_equals_the_engine(spark, district, cap, buckets):
    from matching.scoring import initial_model
    from matching.spark import link_spark
    from matching.spec import load_spec

    registry, queries = district
    spec = load_spec("address_to_house")
    spec = spec.model_copy(update=dict(max_block_size=cap, decision=spec.decision.model_copy(update=dict(min_weight=2.0, min_gap=1.0))))
    want, model = _engine(registry, queries, spec, initial_model(spec))
    got, _ = link_spark(_spark_side(spark, queries, "id"), _spark_side(spark, registry, "house_code"), spec,
                        model=model, buckets=buckets)
    got = got.toPandas()
    assert len(got) == len(queries)
    _assert_same(_by_id(got, "_id_l"), _by_id(want, "left_id"))
    # the generated texts reach every kind of answer, so the equality above covers them
    expl = want["explanation"].fillna("")
    assert (want["method"] == "exact").any() and (want["method"] == "fuzzy").any()
    assert expl.str.startswith("unresolved=not_in_registry").any() and (expl == "unresolved=no_candidate").any()
    assert expl.str.contains("gap=").any()
    assert expl.str.contains("dominates=").any()   # the Pareto-dominance rule of the engine's decide
    if cap == 3:
        assert expl.str.contains("too_vague=").any()


def test_trained_model_is_used_in_every_partition(spark, district):
    """Without a model, Spark trains one (u on a sample, m by EM on pattern counts from the partitions) and
    its decisions are the engine's with that model."""
    from matching.spark import link_spark
    from matching.spec import load_spec

    registry, queries = district
    spec = load_spec("address_to_house")
    spec = spec.model_copy(update=dict(em=spec.em.model_copy(update=dict(min_pairs=50)), decision=spec.decision.model_copy(update=dict(min_weight=2.0,
                                                                              min_gap=1.0))))
    got, model = link_spark(_spark_side(spark, queries, "id"), _spark_side(spark, registry, "house_code"), spec,
                            buckets=2)
    assert model.iterations > 0
    want, _ = _engine(registry, queries, spec, model)
    _assert_same(_by_id(got.toPandas(), "_id_l"), _by_id(want, "left_id"))


def test_the_same_records_partitioned_otherwise_train_the_same_model(spark, district):
    """The training samples (u's random pairs, EM's share of a large left side) are drawn by record id, not
    by ``rand(seed)``, which Spark seeds per partition: one partition or seven, the model, the scores and
    the explanations are the same."""
    from matching.spark import link_spark
    from matching.spec import load_spec

    registry, queries = district
    spec = load_spec("address_to_house")
    # samples smaller than the sides, so that which records they hold matters: 12 x 12 random pairs, and EM
    # on about 150 of the 260 queries
    spec = spec.model_copy(update=dict(em=spec.em.model_copy(update=dict(min_pairs=50, random_pairs=144,
                                                                         max_pairs=150))))
    left, right = _spark_side(spark, queries, "id"), _spark_side(spark, registry, "house_code")
    runs = []
    for parts in (1, 7):
        got, model = link_spark(left.repartition(parts), right.repartition(parts), spec, buckets=2)
        runs.append((model, _by_id(got.toPandas(), "_id_l")))
    (m1, d1), (m7, d7) = runs
    assert m1.iterations > 0
    assert (m1.m, m1.u, m1.lam) == (m7.m, m7.u, m7.lam)
    assert len(d1) == len(queries) and d1 == d7   # (house, method, explanation, score) per query


def test_delivered_codes_leave_the_trained_model_as_it_is(spark, district):
    """Training counts no delivered code, so a query that carries one is counted in its partitions like any
    other (``matching.spark.training_side``): the model trained with codes for most queries (right, wrong,
    or unknown to the registry) is the one trained without, and so are the decisions' scores."""
    from pyspark.sql import functions as F

    from matching.spark import link_spark, training_side
    from matching.spec import load_spec

    registry, queries = district
    spec = load_spec("address_to_house")
    spec = spec.model_copy(update=dict(em=spec.em.model_copy(update=dict(min_pairs=50))))
    left, right = _spark_side(spark, queries, "id"), _spark_side(spark, registry, "house_code")
    codes = [(r.id, r.true_code if i % 3 else "C0101") for i, r in enumerate(queries.dropna(subset=["true_code"])
                                                                              .itertuples()) if i % 4]
    forced = spark.createDataFrame(codes, "_id_l string, _id_r string")
    plain_decisions, plain = link_spark(left, right, spec, buckets=2)
    coded_decisions, coded = link_spark(left, right, spec, forced=forced, buckets=2)
    assert plain.iterations > 0 and len(codes) > 150
    assert (coded.m, coded.u, coded.lam) == (plain.m, plain.u, plain.lam)
    unforced = {r["_id_l"]: r["score"] for r in plain_decisions.collect()}
    verified = 0
    for r in coded_decisions.collect():
        if r["method"] == "scanned_code_verified":
            verified += 1
        elif r["_id_l"] not in dict(codes):
            assert r["score"] == unforced[r["_id_l"]], r["_id_l"]
    assert verified > 0
    flags = training_side(spark.createDataFrame([(0, 0), (1, 1), (2, 0), (1, 2)], "_fan0 int, _fan1 int")
                          .withColumn("_local", F.lit(False)))
    assert [r["_local"] for r in flags.collect()] == [True, True, False, False]


def test_forced_pairs_and_a_few_queries(spark, district):
    """A delivered code is one more candidate, accepted when it agrees; the incremental path (a few queries,
    ``small_left``) gives the same answers as the full run."""
    from matching.scoring import initial_model
    from matching.spark import link_spark
    from matching.spec import load_spec

    registry, queries = district
    spec = load_spec("address_to_house")
    spec = spec.model_copy(update=dict(decision=spec.decision.model_copy(update=dict(min_weight=2.0, min_gap=1.0))))
    want, model = _engine(registry, queries, spec, initial_model(spec))
    want = _by_id(want, "left_id")
    left, right = _spark_side(spark, queries, "id"), _spark_side(spark, registry, "house_code")
    truth = queries.dropna(subset=["true_code"])
    wrong = {"Q000": "C0101" if truth.iloc[0]["true_code"] != "C0101" else "C0102"}
    pairs = [(r.id, r.true_code) for r in truth.itertuples()][:40] + list(wrong.items())
    forced = spark.createDataFrame(pairs, "_id_l string, _id_r string").where("_id_l != 'Q000' or _id_r != ''")
    forced = forced.dropDuplicates(["_id_l"])
    got, _ = link_spark(left, right, spec, model=model, forced=forced, buckets=2)
    got = _by_id(got.toPandas(), "_id_l")
    fmap = dict((r["_id_l"], r["_id_r"]) for r in forced.collect())
    assert set(got) == set(want)
    verified = [k for k, v in got.items() if v[1] == "scanned_code_verified"]
    assert len(verified) >= 20
    for k, v in got.items():
        if k not in fmap:
            assert v == want[k], k
        elif v[1] == "scanned_code_verified":
            assert v[0] == fmap[k] and v[2].startswith("scanned_code_verified;") and "weight=" in v[2]
        elif want[k][0] is not None and fmap[k] == want[k][0]:
            pytest.fail(f"{k}: the engine's own answer, delivered, must be verified")
    # incremental: a few queries, the right side filtered to their keys, same answers
    few = queries["id"].iloc[::7].tolist()
    part, _ = link_spark(left.where(left["_id"].isin(few)), right, spec, model=model, small_left=True, buckets=2)
    full = {k: v for k, v in want.items() if k in few}
    _assert_same(_by_id(part.toPandas(), "_id_l"), full)


def _candidates(df: pd.DataFrame, id_col: str) -> dict[str, list | None]:
    out = {}
    for k, c in zip(df[id_col].astype(str), df["candidates"], strict=True):
        if c is None or (isinstance(c, float) and math.isnan(c)):
            out[k] = None
        else:
            out[k] = [(x["house_code"], x["weight"], x["why"]) for x in
                      (c if isinstance(c[0], dict) else [x.asDict() for x in c])]
    return out


@pytest.mark.parametrize(("cap", "buckets"), [(None, 2), (3, 3)])
def test_top_k_candidates_equal_the_engine(spark, district, cap, buckets):
    """``top_k``: every unresolved record's best candidates (house, weight, why, in order) are the engine's,
    whether the query was decided inside one partition or by the reduction of several (a lane and a
    building in one text); resolved records carry none."""
    from matching.scoring import initial_model
    from matching.spark import link_spark
    from matching.spec import load_spec

    registry, queries = district
    spec = load_spec("address_to_house")
    spec = spec.model_copy(update=dict(max_block_size=cap, decision=spec.decision.model_copy(update=dict(min_weight=2.0, min_gap=1.0))))
    want, model = _engine(registry, queries, spec, initial_model(spec), top_k=3)
    got, _ = link_spark(_spark_side(spark, queries, "id"), _spark_side(spark, registry, "house_code"), spec,
                        model=model, buckets=buckets, top_k=3)
    got = got.toPandas()
    _assert_same(_by_id(got, "_id_l"), _by_id(want, "left_id"))
    got_c, want_c = _candidates(got, "_id_l"), _candidates(want, "left_id")
    assert got_c == want_c
    resolved = set(want.loc[want["right_id"].notna(), "left_id"].astype(str))
    assert resolved and all(want_c[k] is None for k in resolved)
    listed = [c for c in want_c.values() if c]
    assert len(listed) >= 10 and max(len(c) for c in listed) <= 3
    if cap is None:   # blocks of a few houses keep fewer
        assert max(len(c) for c in listed) == 3
    whys = {w.split(":")[0] for c in listed for _, _, w in c}
    assert {"conflict", "ambiguous"} <= whys
    # texts with a lane and a building go to two partitions: their candidates come from the reduction
    two_routes = queries.loc[queries["address"].fillna("").str.contains("坊.*号3栋"), "id"]
    assert any(want_c[k] for k in two_routes)


@pytest.mark.parametrize("buckets", [2, 3])
def test_a_delivered_code_decided_in_its_partition_equals_the_reduction(spark, district, buckets):
    """A query whose delivered code is among its candidates, all in one partition, is decided there
    (matching.partitioned.run_partition, pass FORCED) with the same answer, score, explanation and candidates
    as the reduction of its pairs gives. The reference: the same pairs each delivered twice (a query with
    several delivered codes is always reduced). Codes: right ones, wrong ones among the candidates (another
    room of the building) and wrong ones elsewhere (another complex)."""
    from matching.scoring import initial_model
    from matching.spark import link_spark
    from matching.spec import load_spec

    registry, queries = district
    spec = load_spec("address_to_house")
    spec = spec.model_copy(update=dict(decision=spec.decision.model_copy(update=dict(min_weight=2.0, min_gap=1.0))))
    _, model = _engine(registry, queries, spec, initial_model(spec))
    left, right = _spark_side(spark, queries, "id"), _spark_side(spark, registry, "house_code")
    codes = registry["house_code"].tolist()
    rng = random.Random(5)
    pairs = []
    for r in queries.dropna(subset=["true_code"]).itertuples():
        kind = rng.randrange(4)
        if kind == 0:
            continue
        code = r.true_code
        if kind == 2:     # a neighbour: the same building, the next room
            code = code[:-1] + ("2" if code[-1] != "2" else "1")
        elif kind == 3:
            code = rng.choice(codes)
        if code in codes:
            pairs.append((r.id, code))
    forced = spark.createDataFrame(pairs, "_id_l string, _id_r string")
    got, _ = link_spark(left, right, spec, model=model, forced=forced, buckets=buckets, top_k=3)
    ref, _ = link_spark(left, right, spec, model=model, forced=forced.unionAll(forced), buckets=buckets, top_k=3)
    got, ref = got.toPandas(), ref.toPandas()
    _assert_same(_by_id(got, "_id_l"), _by_id(ref, "_id_l"))
    assert _candidates(got, "_id_l") == _candidates(ref, "_id_l")
    methods = got["method"].value_counts()
    assert methods.get("scanned_code_verified", 0) >= 20 and len(got) == len(queries)
