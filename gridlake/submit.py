"""The Spark application the DAGs run: ``spark-submit gridlake/submit.py --date D --stages S --run-id R``.

It calls :func:`gridlake.pipeline.run_night` inside the spark-submit driver, so the
scheduler and the API server never hold a JVM. ``--sources a,b`` limits the bronze
stage to those deliveries (passed to the stage as ``ctx.extras["sources"]``).
On failure the last line on stderr is ``GRIDLAKE-ERROR: <type>: <message>``, which the
Airflow task raises as its own error; the exit code is 1 (2 for a configuration error).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

# Run as a script (spark-submit), Python puts this file's folder first on sys.path, where platform
# modules (io.py, config.py, ...) would shadow top-level names: take it off; the repo root is on the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

log = logging.getLogger("gridlake.submit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gridlake/submit.py", description=__doc__.splitlines()[0])
    p.add_argument("--date", required=True, help="delivery night YYYY-MM-DD")
    p.add_argument("--stages", default="all", help="comma list of pipeline stages (default all)")
    p.add_argument("--run-id", default=None, help="run id of the manifest")
    p.add_argument("--sources", default=None, help="comma list of sources for the bronze stage")
    p.add_argument("--profile", default=None)
    p.add_argument("--data", default=None)
    return p.parse_args(argv)


def _run(args: argparse.Namespace) -> None:
    from gridlake import pipeline
    from gridlake.config import load_settings

    settings = load_settings(args.profile, args.data)
    night = pipeline.parse_date(args.date)
    stages = None if args.stages == "all" else [s.strip() for s in args.stages.split(",") if s.strip()]
    extras: dict[str, Any] = {}
    if args.sources:
        extras["sources"] = [s.strip() for s in args.sources.split(",") if s.strip()]

    def progress(stage: str, state: str) -> None:
        log.info("%s %s %s", night, stage, pipeline.PROGRESS_WORDS.get(state, state))

    manifest = pipeline.run_night(settings, night, stages, args.run_id, progress=progress, extras=extras)
    log.info("manifest %s (%s)", manifest.path, manifest.doc.get("status"))


def main(argv: list[str] | None = None) -> int:
    from gridlake.cli import write_bytecode
    from gridlake.permissions import apply_umask

    write_bytecode()  # as the command line does (an Airflow worker's environment may forbid it)
    apply_umask()  # before Spark starts: the driver JVM and every file it writes inherit it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout, force=True)
    for noisy in ("py4j", "great_expectations", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from gridlake.sanitise import describe_exception, install_log_filter

    install_log_filter()  # the Airflow task log is this process's output: values never reach it
    args = parse_args(argv)
    try:
        _run(args)
    except Exception as exc:  # noqa: BLE001 - the one line the Airflow task shows
        from gridlake.config import ConfigError

        log.exception("stage failed")
        sys.stdout.flush()
        msg = " ".join(describe_exception(exc).split())[:1000]
        print(f"GRIDLAKE-ERROR: {msg}", file=sys.stderr, flush=True)  # noqa: T201
        return 2 if isinstance(exc, ConfigError) else 1
    return 0


if __name__ == "__main__":
    code = main()
    # Stop the session (its JVM) before exiting so spark-submit returns promptly.
    try:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
    except Exception:  # noqa: BLE001
        pass
    sys.exit(code)
