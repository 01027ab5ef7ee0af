"""Routing of the partitioned Spark linkage (no Spark): every rule on exactly one route whose key it contains."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_routes_of_the_address_spec():
    from matching.partitioned import plan_routes
    from matching.spec import load_spec

    spec = load_spec("address_to_house")
    main = plan_routes(spec.blocking, spec)
    assert [r.key for r in main] == ["room"] and main[0].rules == spec.blocking
    fallback = plan_routes(spec.blocking_fallback, spec)
    # `lane` has a value transform: `lane_no` (no transform) routes the lane rules
    assert [r.key for r in fallback] == ["building", "lane_no"]
    for routes, rules in ((main, spec.blocking), (fallback, spec.blocking_fallback)):
        assert sorted(r for route in routes for r in route.rules) == sorted(rules)
        assert all(route.key in r for route in routes for r in route.rules)


def test_routes_cover_rules_without_a_common_key():
    from matching.partitioned import plan_routes
    from matching.spec import load_spec

    spec = load_spec("address_to_house")
    rules = (("complex[:2]", "building"), ("road", "door_no"), ("complex[:2]", "unit"), ("village",))
    routes = plan_routes(rules, spec.model_copy(update=dict(blocking=rules)))
    # `road` has a value transform (`name`): `door_no` (none) routes its rule
    assert [r.key for r in routes] == ["complex[:2]", "door_no", "village"]
    assert sum(len(r.rules) for r in routes) == len(rules)


def test_partition_and_reduction_decide_as_the_engine():
    """One query split over two partitions (two routes) is decided by the reduction as the engine decides it."""
    from matching.engine import link, parsed_addresses
    from matching.partitioned import MAIN, plan_routes, reduce_queries, run_partition
    from matching.scoring import initial_model
    from matching.spec import load_spec
    from schemas.address import ADDRESS_COMPONENTS

    spec = load_spec("address_to_house")
    spec = spec.model_copy(update=dict(blocking=(("complex", "building"), ("road", "door_no")), blocking_fallback=(),
                                       decision=spec.decision.model_copy(update=dict(min_weight=1.0, min_gap=0.5))))
    registry = pd.DataFrame({"house_code": ["H1", "H2", "H3"],
                             "address": ["福华路18号福华花园3栋501", "福华路18号福华花园3栋502", "金秀路7号金秀大厦3栋501"]})
    queries = pd.DataFrame({"id": ["Q1"], "address": ["福华路18号福华花园3栋501"]})
    want, model = link(queries, registry, spec, initial_model(spec))

    def side(pdf, id_col, local):
        out = parsed_addresses(pdf["address"])[["address_norm", *ADDRESS_COMPONENTS]]
        out.insert(0, "_id", pdf[id_col].to_numpy())
        out["_local"], out["_next"] = local, False
        return out

    routes = plan_routes(spec.blocking, spec)
    assert len(routes) == 2
    rows = pd.concat([run_partition(side(queries, "id", False), side(registry, "house_code", False), spec, model,
                                    route, MAIN) for route in routes], ignore_index=True)
    assert set(rows["_kind"]) == {"p", "v"} and (rows["_kind"] == "p").sum() >= 2
    got = reduce_queries(rows, spec, model)
    assert got["right_id"].tolist() == want["right_id"].tolist() == ["H1"]
    assert got["explanation"].tolist() == want["explanation"].tolist()
    assert np.isclose(got["score"].astype(float).iloc[0], want["score"].iloc[0], atol=1e-12)


def test_top_candidates_order_and_why():
    """The engine's k best candidates: compatible first, by weight then id; why each was not chosen."""
    from matching.engine import top_candidates
    from matching.spec import spec_from_dict

    spec = spec_from_dict({"name": "t", "left_id": "id", "right_id": "id", "blocking": [["b"]],
                           "comparisons": [{"name": "b", "levels": ["null", "exact", "else"]}],
                           "decision": {"min_weight": 0.0, "min_gap": 3.0}})
    right_ids = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)
    pairs = pd.DataFrame({
        "_lpos": [0, 0, 0, 0, 1, 2, 2],
        "_rpos": [1, 0, 2, 3, 4, 5, 0],
        "_compatible": [True, True, True, False, True, False, False],
        "_violations": ["", "", "", "room", "", None, "room;floor"],
        "weight": [10.000004, 10.0, 6.0, 20.0, -1.0, 5.0, 7.0]})
    out = top_candidates(pairs, 4, right_ids, spec, 3)
    # a tie on the rounded weight goes to the smaller id; the conflicting one, though heavier, comes last
    assert out[0] == [{"house_code": "a", "weight": 10.0, "why": "ambiguous"},
                      {"house_code": "b", "weight": 10.0, "why": "ambiguous"},
                      {"house_code": "c", "weight": 6.0, "why": "outranked"}]
    assert out[1] == [{"house_code": "e", "weight": -1.0, "why": "low_weight"}]
    assert out[2] == [{"house_code": "a", "weight": 7.0, "why": "conflict:room,floor"},
                      {"house_code": "f", "weight": 5.0, "why": "conflict:registry"}]
    assert out[3] is None
    assert top_candidates(pairs, 4, right_ids, spec, 0).tolist() == [None] * 4
