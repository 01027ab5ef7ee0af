"""The stage server's warm-up: every step runs on made-up rows, leaves nothing behind, stops when busy."""

from __future__ import annotations

import threading

from gridlake import stage_warmup


def test_warm_up_runs_every_step_and_deletes_its_scratch_folder(spark, tmp_path):
    scratch = tmp_path / "server" / "warm-up"
    done = stage_warmup.warm_up(spark, scratch)
    assert done == ["partitioned append", "append", "merge", "grouped count", "checkpoint to pandas",
                    "pandas function"]
    assert not scratch.exists()
    assert sorted(p.name for p in (tmp_path / "server").iterdir()) == []  # nothing else written
    assert spark.sparkContext.getLocalProperty("gridlake.stage") is None  # the label is lifted


def test_warm_up_stops_once_a_request_arrives(spark, tmp_path):
    busy = threading.Event()
    busy.set()
    assert stage_warmup.warm_up(spark, tmp_path / "w", busy) == []
    assert not (tmp_path / "w").exists()


def test_warm_up_thread_logs_and_survives_a_failure(spark, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")  # the scratch folder cannot be made under a file
    with caplog.at_level("WARNING", logger="gridlake.stage_warmup"):
        thread = stage_warmup.start(spark, blocker / "w", threading.Event())
        thread.join(120)
    assert not thread.is_alive()
    assert any("warm-up stopped" in r.getMessage() for r in caplog.records)
    assert blocker.read_text(encoding="utf-8") == "not a folder"
