"""What a stage read and wrote (gridlake.access) and what a rerun's skip depends on (gridlake.stage_replay), without Spark."""

from __future__ import annotations

import datetime as dt
import threading

from gridlake import access, stage_replay
from gridlake.access import commit_stamp


def test_first_stamp_read_is_kept_and_own_commits_move_it():
    with access.recording() as acc:
        access.note_read("silver.housing", 3, commit_stamp(3, 10, 1))
        access.note_read("silver.housing", 3, commit_stamp(3, 10, 1))
        access.note_read("gold.x", -1, commit_stamp(-1))
        access.note_commit("gold.x", (-1, commit_stamp(-1)), (0, commit_stamp(0, 5, 2)))
        access.note_read("gold.x", 0, commit_stamp(0, 5, 2))  # reading back its own commit
        access.note_commit("gold.x", (0, commit_stamp(0, 5, 2)), (0, commit_stamp(0, 5, 2)))  # nothing to commit
    assert acc.tables == {"silver.housing": "3/10/1", "gold.x": "0/5/2"}
    assert acc.written == {"gold.x"}
    assert acc.doubts == []
    access.note_read("silver.other", 1, commit_stamp(1, 1, 1))  # after the recording: not noted
    assert "silver.other" not in acc.tables


def test_a_table_moved_by_someone_else_makes_the_record_doubtful():
    with access.recording() as acc:
        access.note_read("silver.housing", 3, commit_stamp(3, 10, 1))
        access.note_read("silver.housing", 4, commit_stamp(4, 12, 9))  # another process committed meanwhile
    assert acc.doubts and "silver.housing" in acc.doubts[0]
    with access.recording() as acc:
        access.note_read("gold.x", 2, commit_stamp(2, 1, 1))
        access.note_commit("gold.x", (2, commit_stamp(2, 1, 1)), (4, commit_stamp(4, 1, 1)))  # two where one was made
    assert acc.doubts and "2 commits" in acc.doubts[0]
    with access.recording() as acc:
        access.note_read("gold.x", 2, commit_stamp(2, 1, 1))
        access.note_commit("gold.x", (3, commit_stamp(3, 1, 1)), (4, commit_stamp(4, 1, 1)))  # moved before the commit
    assert acc.doubts


def test_two_recordings_at_once_doubt_each_other():
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def other():
        with access.recording() as acc:
            inside.set()
            release.wait(5)
        seen["other"] = acc

    t = threading.Thread(target=other)
    t.start()
    inside.wait(5)
    with access.recording() as acc:
        pass
    release.set()
    t.join(5)
    assert acc.doubts and seen["other"].doubts


def test_a_recreated_table_at_the_same_version_has_another_stamp():
    assert commit_stamp(5, 800, 1_700_000_000_000) != commit_stamp(5, 812, 1_700_000_900_000)
    assert commit_stamp(-1) == "absent"


def test_run_options_and_inputs_change_the_digest(settings):
    night = dt.date(2026, 11, 1)
    base = stage_replay.inputs_digest(settings, "gold", night, {"defer_quality_writes": True}, "fp1")
    assert base is not None and base == stage_replay.inputs_digest(settings, "gold", night, {}, "fp1")
    assert stage_replay.inputs_digest(settings, "gold", night, {"recompute": True}, "fp1") == base  # recorded too
    assert stage_replay.inputs_digest(settings, "gold", night, {"sources": ["rentals"]}, "fp1") is None
    assert stage_replay.inputs_digest(settings, "gold", night, {"retrain_matching": True}, "fp1") is None
    others = {
        stage_replay.inputs_digest(settings, "matching", night, {}, "fp1"),
        stage_replay.inputs_digest(settings, "gold", night + dt.timedelta(days=1), {}, "fp1"),
        stage_replay.inputs_digest(settings, "gold", night, {}, "fp2"),
        stage_replay.inputs_digest(settings.model_copy(update={"profile": "cluster"}), "gold", night, {}, "fp1"),
    }
    assert base not in others and len(others) == 4


def test_manifest_additions_are_what_the_stage_added():
    doc = {"quality": {"silver.housing": {"success": True}}, "conservation": {"run": {"balanced": True}}}
    before = stage_replay.manifest_sections(doc)
    doc["quality"]["gold.discrepancies"] = {"success": True, "warnings": 1}
    doc["quality"]["silver.housing"] = {"success": False}
    assert stage_replay.added(before, doc) == {
        "quality": {"gold.discrepancies": {"success": True, "warnings": 1}, "silver.housing": {"success": False}},
        "conservation": {}, "row_counts": {}, "links": {}}


def test_the_digest_covers_code_configuration_and_quality_suites():
    names = [n for n, _ in stage_replay.digest_files()]
    assert "gridlake/stage_replay.py" in names and "jobs/gold/runner.py" in names
    assert "conf/rules.yaml" in names
    # a changed expectation suite can fail a gate the recorded success passed: it must force a rerun
    assert any(n.startswith("expectations/") and n.endswith(".yaml") for n in names)
