"""Is a night complete in bronze? The nightly DAG's ``bronze`` task (no Spark)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from gridlake.airflow_runtime import not_yet_ingested
from gridlake.config import Settings
from gridlake.errors import GridlakeError


def check_bronze_complete(settings: Settings, night: dt.date, sources: Iterable[str]) -> dict[str, Any]:
    """Is every source of ``night`` in bronze? Each source is ``in_bronze`` or ``absent`` (no delivery).

    Reads the landing folders and the ingestion log (``deltalake``, no JVM); raises
    :class:`GridlakeError` naming the sources with delivered files not yet in bronze (late).
    """
    from gridlake.sources import get_source
    from jobs.bronze.landing import discover  # the stage's own listing: sub-folders, no links

    status: dict[str, str] = {}
    late: dict[str, int] = {}
    for source in sources:
        found, _ = discover(settings.landing, {source: get_source(source)}, night)
        files = [f.path for f in found if not f.skip]
        if not files:
            status[source] = "absent"
            continue
        missing = not_yet_ingested(settings, files)
        if missing:
            late[source] = len(missing)
        status[source] = "late" if missing else "in_bronze"
    if late:
        raise GridlakeError("bronze incomplete for the night " + night.isoformat() + ": "
                            + ", ".join(f"{s} ({n} file(s) not ingested)" for s, n in sorted(late.items())))
    return {"night": night.isoformat(), "sources": status}
