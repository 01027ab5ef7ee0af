"""``gridlake as-of --night D [--sql Q]``: gold exactly as night D's manifest recorded it.

The manifest of night D (``_runs/*.json``, the latest successful attempt) records every table's Delta
version. Each gold table is registered as a view at that version (``versionAsOf``); a version VACUUM or
log retention has removed (older than the retention window, or erased) is named plainly and left out,
never silently replaced by a newer one. Pseudonyms are shown with the key version the table had then.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gridlake.config import Settings, load_settings
from gridlake.errors import GridlakeError
from gridlake.lifecycle import lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class AsOfError(GridlakeError):
    """No manifest for the night, or the query needs a table version that no longer exists."""


@dataclass
class TableAsOf:
    table: str
    version: int
    available: bool
    why: str = ""
    key_version: int | None = None


def manifest_of(settings: Settings, night: dt.date) -> dict[str, Any]:
    """The manifest of ``night`` (the last successful one, else the last one)."""
    docs = [d for d in lake.read_manifests(settings) if d.get("run_date") == night.isoformat()]
    if not docs:
        raise AsOfError(f"no run manifest for night {night} in {settings.runs_dir}")
    ok = [d for d in docs if d.get("status") == "success"]
    return (ok or docs)[-1]


def register_as_of(spark: SparkSession, settings: Settings, night: dt.date,
                   layers: tuple[str, ...] = ("gold",)) -> list[TableAsOf]:
    """Register ``<name>`` and ``<layer>_<name>`` views at the night's versions; report each table."""
    from gridlake.lifecycle.delta_ops import table_properties
    from gridlake.lifecycle.maintain import needed_files_exist
    from gridlake.privacy import KEY_VERSION_PROPERTY

    doc = manifest_of(settings, night)
    out: list[TableAsOf] = []
    for full, version in sorted(doc.get("table_versions", {}).items()):
        layer, name = full.split(".", 1)
        if layer not in layers or not isinstance(version, int) or version < 0:
            continue
        if not needed_files_exist(spark, settings, layer, name, version):
            earliest = lake.earliest_readable_version(lake.table_dir(settings, layer, name))
            out.append(TableAsOf(full, version, False,
                                 f"version {version} has been vacuumed or erased (oldest readable version: {earliest})"))
            continue
        df = spark.read.format("delta").option("versionAsOf", version).load(settings.table_path(layer, name))
        df.createOrReplaceTempView(name)
        df.createOrReplaceTempView(f"{layer}_{name}")
        props = table_properties(spark, settings, layer, name, version=version)
        out.append(TableAsOf(full, version, True, key_version=int(props.get(KEY_VERSION_PROPERTY, "1"))))
    return out


def cmd_as_of(args: argparse.Namespace) -> int:
    """``gridlake as-of --night D [--sql Q] [--limit N]``: exit 1 when a table the night needs is gone."""
    from gridlake.spark import get_spark

    settings = load_settings(args.profile, args.data)
    night = dt.date.fromisoformat(args.night)
    spark = get_spark(settings, app_name="gridlake-as-of")
    tables = register_as_of(spark, settings, night)
    for t in tables:
        if t.available:
            log.info("%s: version %d as recorded for night %s (pseudonym key version %s)", t.table, t.version, night,
                     t.key_version)
        else:
            log.error("%s: NOT AVAILABLE for night %s: %s", t.table, night, t.why)
    missing = [t for t in tables if not t.available]
    if args.sql:
        gone = [t.table for t in missing if t.table.split(".", 1)[1] in args.sql]
        if gone:
            raise AsOfError(f"the query reads {', '.join(gone)}, whose version of night {night} no longer exists")
        from rich.console import Console
        from rich.table import Table

        df = spark.sql(args.sql)
        table = Table(*df.columns, title=f"as of night {night}")
        for row in df.limit(args.limit).collect():
            table.add_row(*["" if v is None else str(v) for v in row])
        Console().print(table)
    return 1 if missing else 0
