"""A real Spark standalone cluster (master and worker as separate processes) runs a night
with the ``cluster`` profile and produces the same gold tables as the local run.

The local run is the shared end-to-end district's first night (``tests/e2e/conftest.py``):
the cluster lake gets the same night's deliveries and its gold is compared with the local gold
at the versions that night's manifest recorded (Delta time travel)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import START
from tools.cluster import standalone_cluster

# Slow (``make test-all``, not CI): a standalone master, worker and driver on two cores cost CI about five
# minutes of its 35; the lake-on-s3a variant (test_cluster_s3.py) is slow for the same reason.
pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]

NIGHT = START
VOLATILE = re.compile(r"(run_id|_ingested_at|_at$|written_at|computed_at|_quarantined_at)")
COMPARED = ("house_resolution", "discrepancies", "followups", "house_profile", "grid_metrics")


def gold_rows(lake: Path | str, table: str, version: int | None = None,
              storage_options: dict[str, str] | None = None) -> list[tuple]:
    """The rows of ``gold.<table>`` (at ``version``), volatile columns dropped, floats rounded, sorted.

    ``lake`` is a local folder or a ``deltalake`` URI (``s3://...`` with its ``storage_options``)."""
    from deltalake import DeltaTable

    uri = f"{str(lake).rstrip('/')}/gold/{table}"
    t = DeltaTable(uri, version=version, storage_options=storage_options).to_pyarrow_table()
    cols = sorted(c for c in t.column_names if not VOLATILE.search(c))

    def norm(v):
        if isinstance(v, float):
            return round(v, 6)
        if isinstance(v, (list, dict)):
            return repr(v)
        return v

    return sorted((tuple(norm(r[c]) for c in cols) for r in t.select(cols).to_pylist()), key=repr)


def cluster_env(master: str, base, **extra: str) -> dict[str, str]:
    """Environment of a ``gridlake run --profile cluster`` against the test's standalone ``master`` (2 cores).

    Partition counts are sized to the tiny district, Delta's snapshot partitions included: the profile's 50
    (sized for a district) made every Delta state reconstruction a 50-task stage on the standalone worker,
    about 8,000 of a night's 9,300 tasks."""
    return dict(base, GRIDLAKE_PROFILE="cluster", GRIDLAKE_SPARK__MASTER=master, GRIDLAKE_SPARK__DRIVER_MEMORY="2g",
                GRIDLAKE_SPARK__EXECUTOR_MEMORY="1g", GRIDLAKE_SPARK__EXECUTOR_CORES="2",
                GRIDLAKE_SPARK__SHUFFLE_PARTITIONS="2", GRIDLAKE_SPARK__DEFAULT_PARALLELISM="2",
                GRIDLAKE_SPARK__DELTA_SNAPSHOT_PARTITIONS="2", **extra)


def test_cluster_profile_gives_the_same_gold_as_local(tmp_path, district):
    settings, manifests = district
    local_root, cluster_root = settings.data, tmp_path / "cluster"
    for folder in sorted((local_root / "landing").glob(f"*/{NIGHT.isoformat()}")):
        shutil.copytree(folder, cluster_root / "landing" / folder.parent.name / folder.name)
    local_versions = manifests[0].doc["table_versions"]

    with standalone_cluster(tmp_path / "spark-cluster", cores=2, memory="2g") as master:
        env = cluster_env(master, os.environ)
        out = subprocess.run(
            [sys.executable, "-m", "gridlake.cli", "run", "--date", NIGHT.isoformat(), "--data", str(cluster_root),
             "--profile", "cluster", "--stages", "bronze,silver,matching,gold"],  # gold is what is compared
            capture_output=True, text=True, timeout=1200, env=env,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        worker_logs = list((tmp_path / "spark-cluster" / "worker").rglob("stderr"))
        assert worker_logs, "the executor ran in the standalone worker, not in the driver"

    for table in COMPARED:
        local = gold_rows(local_root / "lake", table, local_versions[f"gold.{table}"])
        cluster = gold_rows(cluster_root / "lake", table)
        assert local == cluster, f"gold.{table} differs between local and cluster runs"
        assert local or table in ("followups",), f"gold.{table} is empty"
