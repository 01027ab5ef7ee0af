"""A table's upsert computed in this process, in Arrow: what a MERGE of a night's changes leaves.

:func:`upserted` takes a table as read (``previous``), the rows to upsert (``source``, one per key) and
optionally keys to delete, and gives the table as :func:`gridlake.io.upsert_changed`'s MERGE leaves it: each
source row whose key is new, or whose compared columns differ from its previous row, replaces that row or is
added; a deleted key's row is dropped; every other row stays as it was. Rows compare exactly, a missing value
(NaN included) equal only to a missing value, lists and structs element by element, all by Arrow's kernels.

Pure (no Spark, no I/O), so it is tested without a session (``tests/unit/test_arrow_upsert.py``). Where the
MERGE would fail or its outcome is not one row per key (a key twice among the source rows or the touched
table rows, a missing key value, other columns, a type it cannot compare), :class:`NotApplicable` is raised and
the caller lets Spark's MERGE decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["NotApplicable", "Upsert", "upserted", "same_values"]

_ROW, _SRC = "__prev_row", "__src_row"


class NotApplicable(ValueError):
    """The upsert is left to Spark's MERGE (the reason is the message; it names no value)."""


@dataclass(frozen=True)
class Upsert:
    table: pa.Table | None   # the table afterwards; None when nothing changed (commit nothing)
    changed: int             # source rows written: new keys and changed rows
    deleted: int             # previous rows dropped for a deleted key
    written: pa.Table | None = None   # those source rows (for gridlake.changes.record)
    removed: pa.Table | None = None   # the keys of the rows dropped for a deleted key


def same_values(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Per position, whether ``a`` and ``b`` (same type and length) hold the same value: a missing value equals
    only a missing value and NaN only NaN; lists equal when of the same length and equal element by element;
    structs field by field. Raises :class:`NotApplicable` for another nested type (a map, say)."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if isinstance(b, pa.ChunkedArray):
        b = b.combine_chunks()
    n = len(a)
    if n == 0:
        return np.zeros(0, dtype=bool)
    t = a.type
    a_null = _nulls(a)
    b_null = _nulls(b)
    both_null = a_null & b_null
    one_null = a_null ^ b_null
    if pa.types.is_struct(t):
        same = np.ones(n, dtype=bool)
        for i in range(t.num_fields):
            same &= same_values(_field(a, i), _field(b, i))
        return both_null | (~one_null & same)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        present = ~(a_null | b_null)
        la = pc.fill_null(pc.list_value_length(a), 0).to_numpy(zero_copy_only=False)
        lb = pc.fill_null(pc.list_value_length(b), 0).to_numpy(zero_copy_only=False)
        comparable = present & (la == lb)
        same = np.zeros(n, dtype=bool)
        rows = np.flatnonzero(comparable)
        if len(rows):
            idx = pa.array(rows)
            sub_a, sub_b = a.take(idx), b.take(idx)
            elems = same_values(pc.list_flatten(sub_a), pc.list_flatten(sub_b))
            parents = pc.list_parent_indices(sub_a).to_numpy(zero_copy_only=False)
            differing = np.bincount(parents[~elems], minlength=len(rows)) if len(parents) else np.zeros(len(rows))
            same[rows] = differing == 0
        return both_null | same
    if pa.types.is_map(t) or pa.types.is_union(t) or pa.types.is_dictionary(t):
        raise NotApplicable(f"values of type {t} are not compared here")
    eq = pc.fill_null(pc.equal(a, b), False).to_numpy(zero_copy_only=False)
    if pa.types.is_floating(t):   # NaN equals NaN (as Spark's hash of the row sees it), not a missing value
        eq |= _nans(a) & _nans(b)
    return both_null | (~one_null & eq)


def _nulls(arr: pa.Array) -> np.ndarray:
    return arr.is_null().to_numpy(zero_copy_only=False)


def _nans(arr: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.is_nan(arr), False).to_numpy(zero_copy_only=False)


def _field(arr: pa.StructArray, i: int) -> pa.Array:
    return pc.struct_field(arr, [i])


def _indexed(table: pa.Table, keys: Sequence[str], name: str) -> pa.Table:
    return table.select(list(keys)).append_column(name, pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _check_keys(table: pa.Table, keys: Sequence[str], what: str) -> None:
    for k in keys:
        if table.column(k).null_count:
            raise NotApplicable(f"{what} has a missing value in key column {k!r}")


def _unique(table: pa.Table, keys: Sequence[str], what: str) -> None:
    if table.num_rows and table.select(list(keys)).group_by(list(keys)).aggregate([]).num_rows != table.num_rows:
        raise NotApplicable(f"{what} holds a key twice")


def _conform(source: pa.Table, schema: pa.Schema) -> pa.Table:
    if sorted(source.column_names) != sorted(schema.names):
        raise NotApplicable("the source rows and the table have different columns")
    try:
        return source.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError) as exc:
        raise NotApplicable(f"the source rows do not cast to the table's types ({type(exc).__name__})") from None


def _matches(previous: pa.Table, other: pa.Table, keys: Sequence[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(previous rows, other rows)``: the pairs of rows with equal keys (``other`` is the small side, built
    into the join's hash table). Each ``other`` row matches at most one previous row, else NotApplicable."""
    pairs = _indexed(previous, keys, _ROW).join(_indexed(other, keys, _SRC), list(keys), join_type="inner")
    prev = pairs.column(_ROW).to_numpy()
    mine = pairs.column(_SRC).to_numpy()
    if len(np.unique(mine)) != len(mine):
        raise NotApplicable(f"the table holds a key of the {what} twice")
    return prev, mine


def upserted(previous: pa.Table, source: pa.Table, keys: Sequence[str], columns: Sequence[str],
             delete_keys: pa.Table | None = None) -> Upsert:
    """The table ``previous`` after the upsert of ``source`` on ``keys`` (changed when any of ``columns``
    differs) and the deletion of ``delete_keys`` (its ``keys`` columns), as described in the module's text."""
    keys = list(keys)
    source = _conform(source, previous.schema)
    _check_keys(source, keys, "the source")
    _unique(source, keys, "the source")
    prev_rows, src_rows = _matches(previous, source, keys, "source")
    differs = np.zeros(len(prev_rows), dtype=bool)
    if len(prev_rows):
        before = previous.take(pa.array(prev_rows))
        after = source.take(pa.array(src_rows))
        for c in columns:
            differs |= ~same_values(before.column(c), after.column(c))
    new = np.ones(source.num_rows, dtype=bool)
    new[src_rows] = False
    write = new.copy()
    write[src_rows[differs]] = True
    drop = np.zeros(previous.num_rows, dtype=bool)
    drop[prev_rows[differs]] = True
    deleted = 0
    removed = None
    if delete_keys is not None and delete_keys.num_rows:
        gone = delete_keys.select(keys).cast(previous.select(keys).schema)
        _check_keys(gone, keys, "the keys to delete")
        gone = gone.group_by(keys).aggregate([])
        gone_rows, _ = _matches(previous, gone, keys, "keys to delete")
        if np.isin(gone_rows, prev_rows[differs]).any():
            raise NotApplicable("a key is both upserted and deleted")
        drop[gone_rows] = True
        deleted = len(gone_rows)
        removed = previous.select(keys).take(pa.array(gone_rows))
    changed = int(write.sum())
    if not changed and not deleted:
        return Upsert(None, 0, 0)
    kept = previous.filter(pa.array(~drop))
    added = source.filter(pa.array(write))
    return Upsert(pa.concat_tables([kept, added]), changed, deleted, added, removed)
