"""Reading a night's files into Parquet staging files: in this process, or side by side in several.

Reading a delivery is Python row by row (the CSV reader, the header mapping, the staging columns), so one
process uses one core: on a district's first night, 2.07 M rows in nine files, the other core waited. A
night whose files hold at least ``ingest.parallel_min_bytes`` is read by ``ingest.read_processes`` processes
(started with ``spawn``: the parent holds a JVM gateway and threads), the largest files first; a smaller
night is read here, since starting a process costs more than it saves. Each file is read exactly as in one
process (:func:`read_one`), and the results come back in the files' order, so what is recorded does not
depend on which process read what. A process that dies (killed, out of memory) loses only its file's
attempt: that file is read again here.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridlake.sources import IngestConfig, Source
from jobs.bronze.delivery import BronzeRow, Delivery, safe_error
from jobs.bronze.readers import open_delivery
from jobs.bronze.staging import now_utc, write_staging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadJob:
    """One file to read: its private copy, what it is, where its rows go and the rows' constant metadata
    (``_encoding`` and ``_ingested_at`` are added when it is read)."""

    copy: Path
    source: Source
    config: IngestConfig
    name: str
    target: Path
    meta: dict[str, Any]
    size: int


@dataclass
class Read:
    """What reading one file gave: the delivery's form (the attributes the bronze runner records, named as
    :class:`jobs.bronze.delivery.Delivery` names them) and the rows staged. ``failed``: it could not be
    opened (a ``READ_ERROR`` text); ``unexpected``: staging it raised (a safe text and the error's type)."""

    status: str = "ok"
    error: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    detected_format: str | None = None
    header_row: int | None = None
    header_map_json: str | None = None
    form_notes: list[str] = field(default_factory=list)
    note: str | None = None
    rows: int = 0
    malformed: Counter = field(default_factory=Counter)
    failed: str | None = None
    unexpected: str | None = None
    unexpected_type: str | None = None


def counted(rows: Iterable[BronzeRow], counter: Counter) -> Iterator[BronzeRow]:
    """Pass rows through, counting malformed ones by reason."""
    for r in rows:
        if r.malformed_reason:
            counter[r.malformed_reason.split(":")[0]] += 1
        yield r


def _form_of(d: Delivery) -> Read:
    return Read(status=d.status, error=d.error, extra_columns=list(d.extra_columns), encoding=d.encoding,
                detected_format=d.detected_format, header_row=d.header_row, header_map_json=d.header_map_json,
                form_notes=list(d.form_notes), note=d.note)


def read_one(job: ReadJob) -> Read:
    """Open the file and stage its rows (a file that does not load stages nothing). Never raises for the
    file's content: what went wrong is in the result, as a text that quotes no delivered value."""
    try:
        delivery = open_delivery(job.copy, job.source, job.config, name=job.name)
    except Exception as exc:  # an unreadable file is recorded as rejected, the others go on
        return Read(failed=f"READ_ERROR: {safe_error(exc)}")
    if delivery.status != "ok":
        return _form_of(delivery)
    meta = {**job.meta, "_ingested_at": now_utc(), "_encoding": delivery.encoding}
    malformed: Counter = Counter()
    try:
        n = write_staging(counted(delivery.rows(), malformed), job.target, job.source.canonical_columns, meta)
    except Exception as exc:
        return Read(unexpected=safe_error(exc), unexpected_type=type(exc).__name__)
    read = _form_of(delivery)  # notes found while streaming (repeated headers) included
    read.rows, read.malformed = n, malformed
    return read


def side_by_side(jobs: list[ReadJob], config: IngestConfig) -> int:
    """How many processes read ``jobs``: 1 (this one) for a small night, one file, or one core."""
    if sum(j.size for j in jobs) < config.parallel_min_bytes:
        return 1
    return max(1, min(config.read_processes, len(jobs), os.cpu_count() or 1))


def read_all(jobs: list[ReadJob], config: IngestConfig) -> list[Read]:
    """:func:`read_one` of every job, in the jobs' order (see the module docstring for where)."""
    workers = side_by_side(jobs, config)
    if workers == 1:
        return [read_one(j) for j in jobs]
    log.info("bronze: reading %d files in %d processes", len(jobs), workers)
    largest_first = sorted(range(len(jobs)), key=lambda i: -jobs[i].size)
    results: list[Read | None] = [None] * len(jobs)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {i: pool.submit(read_one, jobs[i]) for i in largest_first}
        for i, fut in futures.items():
            try:
                results[i] = fut.result()
            except Exception as exc:  # the process died (BrokenProcessPool...): this file read again here
                log.warning("bronze: a reading process failed (%s); reading its file in this process",
                            type(exc).__name__)
    return [r if r is not None else read_one(jobs[i]) for i, r in enumerate(results)]
