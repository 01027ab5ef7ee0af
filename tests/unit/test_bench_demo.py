"""tools.bench.demo: per-night DAG wall times from the Airflow DB and stage seconds from the run manifests."""

from __future__ import annotations

import json
import sqlite3

from tools.bench.demo import demo_manifests


def _manifest(path, stages) -> None:
    path.write_text(json.dumps({"started_at": "2026-12-01T03:00:00+00:00", "finished_at": "2026-12-01T03:00:05+00:00",
                                "stages": stages}), encoding="utf-8")


def test_nights_from_the_airflow_db_and_the_nightly_manifests(tmp_path):
    _manifest(tmp_path / "gridlake_nightly__2026-11-01.json", {"silver": {"seconds": 84.0}, "gold": {"seconds": 63.0}})
    _manifest(tmp_path / "gridlake_nightly__2026-11-02.json", {"silver": {"seconds": 60.0}})
    db = tmp_path / "airflow.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE dag_run (dag_id TEXT, run_id TEXT, queued_at TEXT, end_date TEXT)")
    runs = [("gridlake_ingest_housing", "manual__2026-12-01T03:00:00+00:00", None, "2026-12-01 03:00:15"),
            ("gridlake_ingest_rentals", "manual__2026-12-01T03:00:15+00:00", None, "2026-12-01 03:00:20"),
            ("gridlake_nightly", "manual__2026-12-01T03:00:20+00:00", None, "2026-12-01 03:03:20"),
            ("gridlake_ingest_housing", "manual__2026-12-01T03:04:00+00:00", "2026-12-01 03:04:00", "2026-12-01 03:04:10"),
            ("gridlake_nightly", "manual__2026-12-01T03:04:10+00:00", None, "2026-12-01 03:06:10")]
    con.executemany("INSERT INTO dag_run VALUES (?, ?, ?, ?)", runs)
    con.commit()
    con.close()
    nights = demo_manifests(tmp_path, db)
    first, second = nights["2026-11-01"], nights["2026-11-02"]
    assert first["nightly_stages"] == {"silver": 84.0, "gold": 63.0}
    assert first["ingest_seconds"] == 20.0 and first["dags"]["gridlake_nightly"] == 180.0
    assert first["airflow_night_seconds"] == 200.0
    assert second["airflow_night_seconds"] == 130.0 and second["ingest_seconds"] == 10.0
    assert demo_manifests(tmp_path)["2026-11-01"].get("dags") is None     # no Airflow DB: stages only
