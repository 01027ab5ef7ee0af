"""Person linkage alone, on a lake's mentions: the driver-side part of ``gold.person_resolution`` timed in one
process, with a digest of its answer (so two commits' runs can be shown to give the same frame).

``python -m tools.bench.persons_linkage dump --data DIR --out mentions.parquet`` builds the mentions as the
matching stage does (``jobs.matching.persons.lake_mention_frame``: silver, the checksum-failed declarations,
gold.house_resolution) and writes them
(restricted values: keep the file where the lake is); ``python -m tools.bench.persons_linkage run --mentions
mentions.parquet --out report.json`` times :func:`jobs.matching.persons.resolution_frame` on them and writes
the report: commit, machine, mention and person counts, seconds, peak RSS and the frame's digest (sha256 of
pandas' row hashes, in row order). Counts and seconds only: no value of a mention.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import resource
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def dump(data: Path, out: Path) -> int:
    """The mentions of the lake under ``data`` as the matching stage reads them, to ``out`` (Parquet)."""
    import types

    from gridlake import io
    from gridlake.config import load_settings
    from gridlake.spark import get_spark
    from jobs.matching import persons
    from jobs.matching.runner import RECORD_SOURCES, checksum_failed_declarations

    settings = load_settings(data_root=data)
    spark = get_spark(settings)
    ctx = types.SimpleNamespace(spark=spark, settings=settings, extras={})
    tables = {s: io.read_table(spark, settings, "silver", s) for s in RECORD_SOURCES
              if io.table_exists(spark, settings, "silver", s)}
    pdf = persons.lake_mention_frame(spark, settings, tables,
                                     checksum_failed_declarations(ctx, tables.get("declarations")))
    if pdf is None:
        raise SystemExit(f"{data}: no silver table names persons")
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.to_parquet(out, index=False)
    log.info("%d mentions written", len(pdf))
    return 0


def run(mentions: Path, out: Path, label: str | None = None) -> dict[str, Any]:
    """Time ``resolution_frame`` on the mentions; the report (see the module docstring)."""
    import pandas as pd

    from jobs.matching.persons import resolution_frame
    from tools.bench.kit import run_info

    pdf = pd.read_parquet(mentions)
    key = b"bench-only-key-not-secret-0123456789abcdef"
    started = time.monotonic()
    frame, stats = resolution_frame(pdf, key)
    seconds = time.monotonic() - started
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    report = {"kind": "persons-linkage", **run_info(), "label": label, "mentions": int(stats["mentions"]),
              "persons": int(stats.get("persons", 0)), "methods": stats.get("methods"),
              "seconds": round(seconds, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "frame_sha256": digest}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m tools.bench.persons_linkage", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="the lake's mentions as the matching stage builds them, to Parquet")
    d.add_argument("--data", type=Path, required=True)
    d.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run", help="time person linkage on dumped mentions; write the report")
    r.add_argument("--mentions", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--label", default=None, help="what the mentions are (seed, scale, night), for the report")
    args = parser.parse_args(argv)
    if args.cmd == "dump":
        return dump(args.data, args.out)
    report = run(args.mentions, args.out, args.label)
    log.info("%d mentions -> %d persons in %.1f s (digest %s)", report["mentions"], report["persons"],
             report["seconds"], report["frame_sha256"][:12])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
