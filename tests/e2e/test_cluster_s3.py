"""The lake on object storage: a night with the ``cluster`` profile on a standalone master and worker,
the Delta lake on ``s3a://`` served by moto (an S3-compatible server on the loopback), gives the same
gold tables as the local run.

What it proves, end to end: the S3A connector jars (``gridlake setup --s3``) load in the driver and the
executor; endpoint and path style come from configuration (``GRIDLAKE_STORAGE__*``); the credentials
come from environment variables the configuration *names* and reach the executor through the session's
Hadoop configuration only (the worker process has no AWS variables); bronze..gold commit to the bucket,
exports and reports stay in the local data root; the run manifest records the bucket's table versions;
gold equals the local run's at the versions that night's manifest recorded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time

import pytest

from gridlake.config import load_settings
from gridlake.spark import jar_cache_dir, s3a_jars
from gridlake.storage import deltalake_location
from tests.e2e.conftest import START
from tests.e2e.test_cluster import COMPARED, cluster_env, gold_rows
from tools.cluster import free_port, standalone_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]

log = logging.getLogger(__name__)

NIGHT = START
BUCKET = "gridlake-s3-test"
# Test-only credentials for the moto server, under names of our choosing (storage.access_key_env ...).
CREDS = {"GRIDLAKE_TEST_S3_ACCESS": "test-access-key", "GRIDLAKE_TEST_S3_SECRET": "test-secret-key"}


@pytest.fixture
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with one empty bucket; yields its endpoint URL."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                     aws_secret_access_key="x").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _bucket_keys(endpoint: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def test_cluster_night_with_the_lake_on_s3a_gives_the_local_gold(tmp_path, district, s3_endpoint, record_property):
    settings, manifests = district
    local_root, cluster_root = settings.data, tmp_path / "cluster"
    for folder in sorted((local_root / "landing").glob(f"*/{NIGHT.isoformat()}")):
        shutil.copytree(folder, cluster_root / "landing" / folder.parent.name / folder.name)
    local_versions = manifests[0].doc["table_versions"]

    # The S3A connector, fetched once into the jar cache like the Delta jars.
    started = time.monotonic()
    setup = subprocess.run([sys.executable, "-m", "gridlake.cli", "setup", "--s3", "--data", str(cluster_root)],
                           capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stderr[-2000:]
    setup_seconds = time.monotonic() - started
    s3_bytes = sum((jar_cache_dir() / j.filename).stat().st_size for j in s3a_jars())
    record_property("s3a_jars_bytes", s3_bytes)
    record_property("setup_s3_seconds", round(setup_seconds, 1))

    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    lake = f"s3a://{BUCKET}/lake"
    with standalone_cluster(tmp_path / "spark-cluster", cores=2, memory="2g") as master:
        env = cluster_env(
            master, base,
            GRIDLAKE_LAKE_ROOT=lake,
            GRIDLAKE_STORAGE__ENDPOINT=s3_endpoint,
            GRIDLAKE_STORAGE__REGION="us-east-1",
            GRIDLAKE_STORAGE__PATH_STYLE_ACCESS="true",
            GRIDLAKE_STORAGE__ACCESS_KEY_ENV="GRIDLAKE_TEST_S3_ACCESS",
            GRIDLAKE_STORAGE__SECRET_KEY_ENV="GRIDLAKE_TEST_S3_SECRET",
            **CREDS,
        )
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "gridlake.cli", "run", "--date", NIGHT.isoformat(), "--data", str(cluster_root),
             "--profile", "cluster"],
            capture_output=True, text=True, timeout=1800, env=env,
        )
        night_seconds = time.monotonic() - started
        record_property("s3a_night_seconds", round(night_seconds, 1))
        assert out.returncode == 0, out.stderr[-3000:]
        worker_logs = list((tmp_path / "spark-cluster" / "worker").rglob("stderr"))
        assert worker_logs, "the executor ran in the standalone worker, not in the driver"
    log.info("s3a jars: %d files, %.1f MB (setup --s3 %.1f s); the night on the cluster, lake on s3a://: %.0f s",
             len(s3a_jars()), s3_bytes / 1e6, setup_seconds, night_seconds)

    # The lake is in the bucket, not on the local disk; exports and manifests are local.
    keys = _bucket_keys(s3_endpoint)
    for table in ("bronze/_ingestion_log", "silver/housing", *(f"gold/{t}" for t in COMPARED)):
        assert any(k.startswith(f"lake/{table}/_delta_log/") for k in keys), f"{table} not committed to the bucket"
    assert not (cluster_root / "lake").exists(), "a lake folder was written under the local data root"
    assert any((cluster_root / "exports").rglob("*.xlsx")), "no officers' list exported to the local folder"
    doc = json.loads((cluster_root / "_runs" / f"manual__{NIGHT.isoformat()}.json").read_text(encoding="utf-8"))
    assert doc["status"] == "success"
    assert all(doc["table_versions"].get(f"gold.{t}", -1) >= 0 for t in COMPARED), "manifest lacks the bucket's tables"
    for secret in CREDS.values():
        assert secret not in out.stdout + out.stderr, "a credential reached the run's output"
        assert secret not in json.dumps(doc), "a credential reached the run manifest"

    s3_settings = load_settings("cluster", cluster_root, env=env)
    uri, options = deltalake_location(s3_settings, s3_settings.lake, env=env)
    for table in COMPARED:
        local = gold_rows(local_root / "lake", table, local_versions[f"gold.{table}"])
        remote = gold_rows(uri, table, doc["table_versions"][f"gold.{table}"], storage_options=options)
        assert local == remote, f"gold.{table} differs between the local run and the s3a:// cluster run"
        assert local or table in ("followups",), f"gold.{table} is empty"
