"""gridlake.arrow_upsert: the table a MERGE of a night's changes leaves, computed in Arrow (no Spark)."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from gridlake.arrow_upsert import NotApplicable, same_values, upserted

CAND = pa.list_(pa.struct([("house_code", pa.string()), ("weight", pa.float64()), ("why", pa.string())]))
SCHEMA = pa.schema([("source", pa.string()), ("record_id", pa.string()), ("house_code", pa.string()),
                    ("score", pa.float64()), ("candidates", CAND), ("note", pa.string())])
KEYS = ["source", "record_id"]
COLUMNS = ["house_code", "score", "candidates"]   # "note" is not compared


def table(rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(SCHEMA.names, r, strict=True)) for r in rows], schema=SCHEMA)


def as_set(t: pa.Table) -> list[tuple]:
    return sorted(tuple(repr(v) for v in r.values()) for r in t.to_pylist())


PREVIOUS = table([
    ("rentals", "r1", "H1", 0.9, None, "a"),
    ("rentals", "r2", None, None, [{"house_code": "H2", "weight": 0.5, "why": "room"}], "b"),
    ("declarations", "r1", "H3", float("nan"), None, "c"),
    ("declarations", "d4", "H4", 1.0, None, "d"),
])


def merged_by_hand(previous: pa.Table, source: pa.Table, gone: set[tuple] = frozenset()) -> list[tuple]:
    """What the MERGE leaves, written out for the test: source rows replace rows of their key when a compared
    column differs (NaN equal to NaN), new keys are added, deleted keys dropped."""
    def key(r):
        return (r["source"], r["record_id"])

    def same(a, b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b
    rows = {key(r): r for r in previous.to_pylist()}
    for r in source.to_pylist():
        old = rows.get(key(r))
        if old is None or not all(same(old[c], r[c]) for c in COLUMNS):
            rows[key(r)] = r
    for k in gone:
        rows.pop(k, None)
    return as_set(pa.Table.from_pylist(list(rows.values()), schema=SCHEMA))


def test_unchanged_rows_and_a_changed_uncompared_column_commit_nothing():
    source = table([("rentals", "r1", "H1", 0.9, None, "other note"),     # only an uncompared column differs
                    ("rentals", "r2", None, None, [{"house_code": "H2", "weight": 0.5, "why": "room"}], "b"),
                    ("declarations", "r1", "H3", float("nan"), None, "c")])   # NaN equals NaN
    result = upserted(PREVIOUS, source, KEYS, COLUMNS)
    assert result.table is None and result.changed == 0 and result.deleted == 0


def test_changed_new_and_deleted_rows_give_what_the_merge_leaves():
    source = table([
        ("rentals", "r1", "H1", 0.9, None, "a"),                                        # unchanged
        ("rentals", "r2", None, None, [{"house_code": "H2", "weight": 0.75, "why": "room"}], "b"),  # nested weight
        ("declarations", "r1", "H3", None, None, "c"),                                  # NaN -> missing
        ("police_incidents", "p9", "H9", 0.8, [], "new"),                               # new key
    ])
    gone = pa.table({"source": ["declarations", "declarations"], "record_id": ["d4", "absent"]})
    result = upserted(PREVIOUS, source, KEYS, COLUMNS, gone)
    assert (result.changed, result.deleted) == (3, 1)
    assert as_set(result.table) == merged_by_hand(PREVIOUS, source, {("declarations", "d4")})
    assert result.table.schema == SCHEMA
    # what was written and deleted, for the record of the commit's keys (gridlake.changes)
    assert sorted(tuple(r.values()) for r in result.written.select(KEYS).to_pylist()) == [
        ("declarations", "r1"), ("police_incidents", "p9"), ("rentals", "r2")]
    assert result.removed.to_pylist() == [{"source": "declarations", "record_id": "d4"}]


def test_a_deleted_key_among_unchanged_source_rows_is_deleted():
    source = table([("declarations", "d4", "H4", 1.0, None, "d")])
    result = upserted(PREVIOUS, source, KEYS, COLUMNS, pa.table({"source": ["declarations"], "record_id": ["d4"]}))
    assert (result.changed, result.deleted) == (0, 1)
    assert as_set(result.table) == merged_by_hand(PREVIOUS, table([]), {("declarations", "d4")})


@pytest.mark.parametrize("a, b, want", [
    ([[1, 2], None, [], [1]], [[1, 2], None, [], [1, 3]], [True, True, True, False]),
    ([[1, None], [None]], [[1, None], [2]], [True, False]),
    ([None, []], [[], None], [False, False]),
])
def test_lists_compare_element_by_element(a, b, want):
    t = pa.list_(pa.int64())
    assert same_values(pa.array(a, t), pa.array(b, t)).tolist() == want


def test_structs_and_floats_compare_exactly():
    t = pa.struct([("x", pa.float64()), ("y", pa.string())])
    a = pa.array([{"x": 1.0, "y": "a"}, None, {"x": float("nan"), "y": None}, {"x": 0.1, "y": "a"}], t)
    b = pa.array([{"x": 1.0, "y": "a"}, {"x": None, "y": None}, {"x": float("nan"), "y": None},
                  {"x": 0.1 + 1e-12, "y": "a"}], t)
    assert same_values(a, b).tolist() == [True, False, True, False]
    assert same_values(pa.array([float("nan"), None]), pa.array([None, None])).tolist() == [False, True]


@pytest.mark.parametrize("source, why", [
    (table([("rentals", "r1", "H1", 0.9, None, "a"), ("rentals", "r1", "H2", 0.9, None, "a")]), "key twice"),
    (table([(None, "r1", "H1", 0.9, None, "a")]), "missing value"),
    (table([("rentals", "r1", "H1", 0.9, None, "a")]).drop_columns(["note"]), "different columns"),
])
def test_what_the_merge_would_refuse_or_decide_otherwise_is_left_to_it(source, why):
    with pytest.raises(NotApplicable, match=why):
        upserted(PREVIOUS, source, KEYS, COLUMNS)


def test_a_key_held_twice_by_the_table_is_left_to_the_merge():
    twice = pa.concat_tables([PREVIOUS, table([("rentals", "r1", "H7", 0.1, None, "x")])])
    with pytest.raises(NotApplicable, match="twice"):
        upserted(twice, table([("rentals", "r1", "H8", 0.9, None, "a")]), KEYS, COLUMNS)


def test_source_columns_in_another_order_and_narrower_types_are_cast_to_the_tables():
    source = pa.table({"note": ["z"], "candidates": pa.array([None], CAND), "score": pa.array([0.5], pa.float32()),
                       "house_code": ["H5"], "record_id": ["r5"], "source": ["rentals"]})
    result = upserted(PREVIOUS, source, KEYS, COLUMNS)
    assert result.changed == 1 and result.table.schema == SCHEMA
    assert ("rentals", "r5", "H5", 0.5, None, "z") in [tuple(r.values()) for r in result.table.to_pylist()]
