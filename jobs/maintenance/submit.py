"""The Spark application of the weekly maintenance: ``spark-submit jobs/maintenance/submit.py [--today D]``.

Runs :func:`gridlake.lifecycle.maintain.run_maintenance` in the spark-submit driver (the Airflow worker
holds no JVM). On failure the last line on stderr is ``GRIDLAKE-ERROR: <type>: <message>``; exit code 1,
or 1 as well when a version a night still needs is no longer readable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

log = logging.getLogger("gridlake.maintenance")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run one maintenance pass, return the exit code."""
    from gridlake.permissions import apply_umask

    apply_umask()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout, force=True)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    p = argparse.ArgumentParser(prog="jobs/maintenance/submit.py", description=__doc__.splitlines()[0])
    p.add_argument("--today", default=None, help="date the retention windows end (YYYY-MM-DD)")
    p.add_argument("--profile", default=None)
    p.add_argument("--data", default=None)
    args = p.parse_args(argv)
    try:
        from gridlake.config import load_settings
        from gridlake.lifecycle.maintain import run_maintenance
        from gridlake.spark import get_spark

        settings = load_settings(args.profile, args.data)
        spark = get_spark(settings, app_name="gridlake-maintenance")
        report = run_maintenance(spark, settings, today=dt.date.fromisoformat(args.today) if args.today else None)
        log.info("maintenance totals: %s", report["totals"])
        if not report["all_needed_versions_intact"]:
            msg = "MaintenanceError: a version a night still needs is no longer readable"
            print(f"GRIDLAKE-ERROR: {msg}", file=sys.stderr, flush=True)  # noqa: T201
            return 1
        return 0
    except Exception as exc:  # noqa: BLE001 - the one line the Airflow task shows
        print(f"GRIDLAKE-ERROR: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",  # noqa: T201
              file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
