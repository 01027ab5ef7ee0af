"""Item 9 of issue 17: two nights at once never let an older night overwrite a newer lifecycle.

The gold commit (``jobs.gold.runner.publish_discrepancies``) on a real Delta table, with the
lifecycle computation given as a function so another night's commit can land *while* a night
computes (a deterministic interleaving of what two processes do).
"""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from gridlake import io
from gridlake.errors import StaleNightError
from gridlake.manifest import Manifest
from gridlake.pipeline import RunContext
from jobs.gold import runner
from schemas.gold import DISCREPANCIES

pytestmark = pytest.mark.spark

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)


def ctx_of(spark, settings, night: dt.date) -> RunContext:
    run_id = f"test__{night.isoformat()}"
    return RunContext(settings, spark, night, run_id, Manifest.open(settings, run_id, night))


def night_frame(spark, night: dt.date, status: str, ids=("d1", "d2")):
    """The whole lifecycle table after ``night`` (every row evaluated that night)."""
    rows = [{"discrepancy_id": i, "rule": "R1", "rule_code": "x", "severity": "high", "evidence": [],
             "reason_codes": [], "corroborating_sources": 1, "match_confidence": 1.0, "priority": 1.0,
             "detected": True, "first_seen": D1, "last_seen": night, "last_evaluated": night, "due_date": night,
             "status": status, "status_since": night, "status_history": []} for i in ids]
    return spark.createDataFrame([{f.name: r.get(f.name) for f in DISCREPANCIES.fields} for r in rows], DISCREPANCIES)


def table(spark, settings):
    return io.read_table(spark, settings, "gold", "discrepancies")


def test_an_older_night_is_refused_and_the_newer_lifecycle_kept(spark, settings):
    runner.publish_discrepancies(ctx_of(spark, settings, D2), lambda prev: night_frame(spark, D2, "confirmed"))
    version = io.table_version(spark, settings, "gold", "discrepancies")
    calls: list[int] = []
    with pytest.raises(StaleNightError, match="night 2026-03-01 is older than night 2026-03-02"):
        runner.publish_discrepancies(ctx_of(spark, settings, D1),
                                     lambda prev: calls.append(1) or night_frame(spark, D1, "open"))
    assert calls == []  # refused before computing anything
    assert io.table_version(spark, settings, "gold", "discrepancies") == version
    assert {r["status"] for r in table(spark, settings).collect()} == {"confirmed"}
    # the same night again (a rerun) is fine and commits nothing new
    runner.publish_discrepancies(ctx_of(spark, settings, D2), lambda prev: night_frame(spark, D2, "confirmed"))
    assert io.table_version(spark, settings, "gold", "discrepancies") == version


def test_a_newer_night_committed_while_an_older_one_computes_wins(spark, settings):
    """Night D2 reads version V and computes; night D3 commits meanwhile: D2 must not commit over it."""
    runner.publish_discrepancies(ctx_of(spark, settings, D1), lambda prev: night_frame(spark, D1, "open"))
    seen_versions: list[int] = []

    def d2_lifecycle(previous):
        seen_versions.append(io.table_version(spark, settings, "gold", "discrepancies"))
        if len(seen_versions) == 1:  # the other night's process commits now
            runner.publish_discrepancies(ctx_of(spark, settings, D3), lambda prev: night_frame(spark, D3, "escalated"))
        return night_frame(spark, D2, "open")

    with pytest.raises(StaleNightError, match="older than night 2026-03-03"):
        runner.publish_discrepancies(ctx_of(spark, settings, D2), d2_lifecycle)
    rows = table(spark, settings).collect()
    assert {(r["status"], r["last_evaluated"]) for r in rows} == {("escalated", D3)}


def test_an_older_night_committed_meanwhile_is_recomputed_from(spark, settings):
    """Night D3 reads V; night D2 (older, but newer than V) commits meanwhile: D3 recomputes from D2's table."""
    runner.publish_discrepancies(ctx_of(spark, settings, D1), lambda prev: night_frame(spark, D1, "open"))
    previous_nights: list[set] = []

    def d3_lifecycle(previous):
        previous_nights.append({r[0] for r in previous.select("last_evaluated").distinct().collect()})
        if len(previous_nights) == 1:
            runner.publish_discrepancies(ctx_of(spark, settings, D2),
                                         lambda prev: night_frame(spark, D2, "confirmed", ids=("d1", "d2", "d3")))
        # the lifecycle carries the previous table's rows forward (as the real transform does)
        return previous.withColumn("last_evaluated", F.lit(D3)).withColumn("last_seen", F.lit(D3))

    _, version = runner.publish_discrepancies(ctx_of(spark, settings, D3), d3_lifecycle)
    assert previous_nights == [{D1}, {D2}]  # the second attempt read the version D2 committed
    rows = table(spark, settings).collect()
    assert sorted(r["discrepancy_id"] for r in rows) == ["d1", "d2", "d3"]  # nothing of D2 lost
    assert {r["last_evaluated"] for r in rows} == {D3} and {r["status"] for r in rows} == {"confirmed"}
    assert version == io.table_version(spark, settings, "gold", "discrepancies")
