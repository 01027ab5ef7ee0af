"""tools.bench.demo: per-night DAG and stage seconds read from the demo's run manifests."""

from __future__ import annotations

import json

from tools.bench.demo import demo_manifests


def _manifest(path, start: str, end: str, stages=None) -> None:
    path.write_text(json.dumps({"started_at": start, "finished_at": end, "stages": stages or {}}), encoding="utf-8")


def test_nights_add_up_dags_and_keep_nightly_stages(tmp_path):
    _manifest(tmp_path / "gridlake_ingest_housing__2026-11-01.json", "2026-12-01T03:00:00+00:00", "2026-12-01T03:00:15+00:00")
    _manifest(tmp_path / "gridlake_ingest_rentals__2026-11-01.json", "2026-12-01T03:00:20+00:00", "2026-12-01T03:00:25+00:00")
    _manifest(tmp_path / "gridlake_nightly__2026-11-01.json", "2026-12-01T03:01:00+00:00", "2026-12-01T03:04:00+00:00",
              {"silver": {"status": "success", "seconds": 84.0}, "gold": {"status": "success", "seconds": 63.0}})
    _manifest(tmp_path / "gridlake_nightly__2026-11-02.json", "2026-12-01T03:05:00+00:00", "2026-12-01T03:07:00+00:00")
    nights = demo_manifests(tmp_path)
    first = nights["2026-11-01"]
    assert first["ingest_seconds"] == 20.0
    assert first["airflow_night_seconds"] == 200.0
    assert first["nightly_stages"] == {"silver": 84.0, "gold": 63.0}
    assert nights["2026-11-02"]["airflow_night_seconds"] == 120.0
