"""The night's changes to gold.person_resolution, told by Arrow's kernels (no Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from jobs.matching.person_publish import COLUMNS, KEYS, arrow_table, changes


def _table(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "source": ["declarations"] * 3 + ["police_incidents"] * (n - 3),
        "record_id": [f"R{i}" for i in range(n)],
        "mention_no": np.array([0, 0, 0, 0, 1, 2][:n], dtype="int32"),
        "role": ["declarant"] * 3 + [None] * (n - 3),
        "person_key": [f"{i:064x}" for i in range(n)],
        "method": ["id_exact", "singleton", "corroborated", "anchor", "sole_bearer", "singleton"][:n],
        "score": [12.5, np.nan, 7.25, np.nan, 3.0, np.nan][:n],
        "explanation": ["id", None, "name+phone", None, "bearer", None][:n],
        "id_status": ["valid", "missing", "checksum_failed", "valid", "invalid", "missing"][:n],
        "identified": [True, False, True, True, False, False][:n],
        "cluster_size": np.array([2, 1, 2, 3, 1, 1][:n], dtype="int32"),
    })[COLUMNS]


def _as_read(frame: pd.DataFrame) -> pa.Table:
    """The table as the lake gives it back: nulls, not NaN; its own string and integer widths."""
    table = arrow_table(frame)
    return table.cast(pa.schema([pa.field(f.name, pa.large_string() if f.type == pa.string() else f.type)
                                 for f in table.schema]))


def test_an_unchanged_night_has_no_changes_whatever_the_row_order_or_missing_value_kind():
    before = _table()
    tonight = before.iloc[::-1].reset_index(drop=True)
    tonight["explanation"] = tonight["explanation"].where(tonight["explanation"].notna(), np.nan)  # NaN, not None
    tonight["mention_no"] = tonight["mention_no"].astype("int64")
    positions, gone = changes(arrow_table(tonight), _as_read(before))
    assert len(positions) == 0 and gone.empty


@pytest.mark.parametrize("column, value", [
    ("person_key", "f" * 64), ("method", "anchor"), ("score", 12.5001), ("score", np.nan), ("explanation", None),
    ("explanation", "id+house"), ("id_status", "invalid"), ("identified", False), ("cluster_size", 3),
    ("role", "tenant"),
])
def test_any_column_that_moves_makes_its_row_a_change(column, value):
    before = _table()
    tonight = before.iloc[[3, 4, 0, 1, 2, 5]].reset_index(drop=True)
    tonight.loc[2, column] = value          # R0, now at position 2
    positions, gone = changes(arrow_table(tonight), _as_read(before))
    assert gone.empty
    assert positions.tolist() == [2]


def test_new_rows_are_changes_and_rows_gone_are_keys_to_delete():
    before = _table()
    tonight = pd.concat([before.iloc[1:], before.iloc[[0]].assign(mention_no=np.int32(1))], ignore_index=True)
    positions, gone = changes(arrow_table(tonight), _as_read(before))
    # the same record with another mention number is another mention: new, and the old one gone
    assert positions.tolist() == [len(tonight) - 1]
    assert list(gone.columns) == list(KEYS)
    assert gone.to_dict("records") == [{"source": "declarations", "record_id": "R0", "mention_no": 0}]


def test_a_mention_twice_is_refused_not_guessed():
    before = _table()
    twice = pd.concat([before, before.iloc[[2]]], ignore_index=True)
    with pytest.raises(ValueError, match="tonight's linkage holds a mention twice"):
        changes(arrow_table(twice), _as_read(before))
    with pytest.raises(ValueError, match="gold.person_resolution holds a mention twice"):
        changes(arrow_table(before), _as_read(twice))


def test_the_arrow_table_is_nullable_as_spark_writes_gold_tables():
    assert all(f.nullable for f in arrow_table(_table()).schema)
