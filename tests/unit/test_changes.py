"""gridlake.changes: the keys each commit wrote, recorded by the writer and trusted only for that commit."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from gridlake import changes


@pytest.fixture
def table(settings):
    """A local Delta table ``silver.t`` at version 0 (three rows) and its path."""
    path = settings.table_path("silver", "t")
    write_deltalake(path, pa.table({"k": ["a", "b", "c"], "n": [1, 2, 3]}))
    return path


def commit(path: str, rows: dict) -> None:
    write_deltalake(path, pa.table(rows), mode="overwrite")


def keys_of(t: pa.Table | None) -> list[str] | None:
    return None if t is None else sorted(t.column("k").to_pylist())


def test_a_recorded_range_gives_the_keys_written_and_deleted(settings, table):
    commit(table, {"k": ["a", "b", "d"], "n": [1, 20, 4]})                    # version 1: b changed, d new, c gone
    assert changes.record(settings, "silver", "t", 0, 1, ["k"], pa.table({"k": ["b", "d"], "n": [20, 4]}),
                          pa.table({"k": ["c"]}))
    commit(table, {"k": ["a", "b", "d"], "n": [10, 20, 4]})                   # version 2: a changed
    assert changes.record(settings, "silver", "t", 1, 2, ["k"], pa.table({"k": ["a"]}))
    assert keys_of(changes.keys_changed(settings, "silver", "t", 0, 1, ["k"])) == ["b", "c", "d"]
    assert keys_of(changes.keys_changed(settings, "silver", "t", 0, 2, ["k"])) == ["a", "b", "c", "d"]
    assert keys_of(changes.keys_changed(settings, "silver", "t", 2, 2, ["k"])) == []     # nothing in between
    assert changes.keys_changed(settings, "silver", "t", 0, 2, ["k", "other"]) is None   # a key not recorded


def test_a_commit_without_a_record_makes_the_range_unknown(settings, table):
    commit(table, {"k": ["a"], "n": [1]})
    assert changes.record(settings, "silver", "t", 0, 1, ["k"], None, pa.table({"k": ["b", "c"]}))
    commit(table, {"k": ["a", "z"], "n": [1, 9]})          # version 2 by a writer that records nothing
    assert changes.keys_changed(settings, "silver", "t", 0, 2, ["k"]) is None
    assert keys_of(changes.keys_changed(settings, "silver", "t", 0, 1, ["k"])) == ["b", "c"]
    assert changes.keys_changed(settings, "silver", "t", 1, 0, ["k"]) is None             # backwards


def test_a_record_is_not_written_over_a_commit_it_did_not_follow(settings, table):
    commit(table, {"k": ["a"], "n": [1]})
    commit(table, {"k": ["a"], "n": [2]})
    # read at version 0, but the table is at 2: another commit came between, so nothing is recorded
    assert not changes.record(settings, "silver", "t", 0, 2, ["k"], pa.table({"k": ["a"]}))
    assert changes.keys_changed(settings, "silver", "t", 1, 2, ["k"]) is None


def test_a_record_of_another_commit_of_the_same_number_is_not_trusted(settings, table, tmp_path):
    commit(table, {"k": ["a", "b"], "n": [1, 2]})
    assert changes.record(settings, "silver", "t", 0, 1, ["k"], pa.table({"k": ["b"]}))
    # the table made again (a lake rolled back and run again): its version 1 is another commit
    import shutil

    shutil.rmtree(table)
    write_deltalake(table, pa.table({"k": ["x"], "n": [0]}))
    commit(table, {"k": ["x", "y"], "n": [0, 1]})
    assert changes.keys_changed(settings, "silver", "t", 0, 1, ["k"]) is None
    # control: recorded again for the new commit, it is trusted
    assert changes.record(settings, "silver", "t", 0, 1, ["k"], pa.table({"k": ["y"]}))
    assert keys_of(changes.keys_changed(settings, "silver", "t", 0, 1, ["k"])) == ["y"]


def test_keys_are_kept_as_strings_and_old_records_pruned(settings, table, monkeypatch):
    monkeypatch.setattr(changes, "KEEP_VERSIONS", 2)
    for v in range(1, 5):
        commit(table, {"k": ["a"], "n": [v]})
        assert changes.record(settings, "silver", "t", v - 1, v, ["k", "n"], pa.table({"k": ["a"], "n": [v]}))
    folder = changes.changes_dir(settings, "silver", "t")
    assert sorted(p.stem for p in folder.glob("*.parquet")) == [f"{3:020d}", f"{4:020d}"]
    got = changes.keys_changed(settings, "silver", "t", 2, 4, ["k", "n"])
    assert got.schema.field("n").type == pa.string() and sorted(got.column("n").to_pylist()) == ["3", "4"]
    assert changes.keys_changed(settings, "silver", "t", 1, 4, ["k"]) is None            # version 2's pruned


def test_nothing_is_recorded_for_a_lake_that_is_not_local(settings, monkeypatch):
    monkeypatch.setattr(type(settings), "lake", property(lambda self: "s3a://bucket/lake"))
    assert changes.changes_dir(settings, "silver", "t") is None
    assert not changes.record(settings, "silver", "t", 0, 1, ["k"], pa.table({"k": ["a"]}))
    assert changes.keys_changed(settings, "silver", "t", 0, 1, ["k"]) is None
