"""The ``gridlake`` command line.

Each subcommand's handler lives in its own module and is imported only when
that subcommand runs, so ``gridlake --help`` starts fast and needs no JVM.
Handlers take the parsed ``argparse.Namespace`` and return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable

from gridlake.config import ConfigError

log = logging.getLogger("gridlake")

SCALES = ("tiny", "community", "street", "district")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="data root (default ./data or $GRIDLAKE_DATA)")
    p.add_argument("--profile", help="configuration profile (default local or $GRIDLAKE_PROFILE)")


def _add(sub, name: str, handler: str, help_: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    p.set_defaults(handler=handler)
    _common(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridlake", description="gridlake: nightly lake, quality, matching and follow-up lists for grid governance."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(sub, "setup", "gridlake.commands:cmd_setup", "fetch the Delta jars once and check Java")
    p.add_argument("--s3", action="store_true", help="also fetch the S3A connector (hadoop-aws + AWS SDK v2 modules); "
                                                     "implied when the profile's lake is on s3a://")

    p = _add(sub, "generate", "tools.generate.cli:cmd_generate", "write a synthetic district to DATA/landing")
    p.add_argument("--scale", default="community", help=f"{'|'.join(SCALES)} or a number of houses")
    p.add_argument("--days", type=int, default=3, help="number of nights to deliver")
    p.add_argument("--start", default="2026-11-01", help="first delivery date (YYYY-MM-DD)")
    p.add_argument("--seed", type=int, default=20141, help="random seed (same seed, same district)")
    p.add_argument("--noise", default=None, help="address noise model (default|second) or a YAML file overriding "
                                                 "the noise rates of conf/generator.yaml")

    p = _add(sub, "run", "gridlake.pipeline:cmd_run", "run one night outside Airflow")
    p.add_argument("--date", required=True, help="delivery date YYYY-MM-DD")
    p.add_argument("--stages", default="all", help="comma list: bronze,silver,matching,gold,exports,reports")
    p.add_argument("--run-id", default=None, help="run id (default: manual__<date>)")
    p.add_argument("--sources", default=None, help="comma list of sources for the bronze stage (default all)")
    p.add_argument("--retrain-matching", action="store_true",
                   help="re-estimate the address and person models and link every record and mention (default: incremental)")
    p.add_argument("--retype-snapshots", action="store_true",
                   help="type every snapshot row again, also rows delivered exactly as their current version")
    p.add_argument("--recompute", action="store_true",
                   help="run every stage asked for, also one whose inputs are unchanged since its last success "
                        "on this night (by default a rerun skips it)")

    p = _add(sub, "demo", "tools.demo:cmd_demo", "generate the sample district and run every night through Airflow")
    p.add_argument("--scale", default="community", help="tiny|community|street|district or a number of houses")
    p.add_argument("--days", type=int, default=2, help="nights to generate: a full first night, then increments")
    p.add_argument("--no-airflow", action="store_true", help="run the nights with `gridlake run` instead")
    p.add_argument("--no-stage-server", action="store_true",
                   help="Airflow tasks spark-submit each stage (default: they share one stage server)")

    p = _add(sub, "stage-server", "gridlake.stage_server:cmd_stage_server",
             "one Spark application that runs the stage tasks of Airflow (start runs in the foreground)")
    p.add_argument("action", choices=("start", "stop", "status"))

    p = _add(sub, "resolve-addresses", "matching.cli:cmd_resolve", "resolve free-text addresses against a registry CSV")
    p.add_argument("--registry", required=True, help="CSV with columns house_code,address")
    p.add_argument("--input", required=True, help="CSV with columns id,address")
    p.add_argument("--output", required=True, help="CSV with id,house_code,score,method,explanation")

    p = _add(sub, "link", "matching.cli:cmd_link", "run a declarative linkage spec over two CSV/Parquet files")
    p.add_argument("--spec", required=True)
    p.add_argument("--left", required=True)
    p.add_argument("--right", required=True)
    p.add_argument("--output", required=True)

    p = _add(sub, "evaluate", "tools.evaluate:cmd_evaluate", "compare the lake with the generator's truth")
    p.add_argument("--date", default=None, help="night to evaluate (default: the last one in the lake)")
    p.add_argument("--output", default=None, help="JSON report path (default DATA/reports/evaluation.json)")

    p = _add(sub, "bench", "tools.bench.pipeline:cmd_bench", "benchmarks writing a JSON report")
    p.add_argument("what", choices=["pipeline", "matching", "matching-fair", "nights", "demo", "profile"])
    p.add_argument("--scale", default="community", help="comma list of scales (nights, profile: one scale)")
    p.add_argument("--days", type=int, default=None,
                   help="nights: how many nights to run twice (default 3); profile: nights to profile (default 1)")
    p.add_argument("--noise", default="default", help="matching: comma list of noise models (default,second)")
    p.add_argument("--seed", type=int, default=20141, help="generator seed of matching, matching-fair, pipeline and demo (recorded in the report)")
    p.add_argument("--output", default=None)

    p = _add(sub, "sql", "gridlake.analyst:cmd_sql", "run Spark SQL over the registered gold tables")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=50)

    p = _add(sub, "delivery-report", "jobs.reports.delivery:cmd_delivery_report",
             "write the delivery report of one night (files, headers, forms, unknown values) from the lake")
    p.add_argument("--date", required=True, help="delivery date YYYY-MM-DD")

    p = _add(sub, "explain", "gridlake.explain:cmd_explain",
             "show one discrepancy's whole chain (rule, evidence, matches, priority, lifecycle), pseudonymised")
    p.add_argument("discrepancy_id")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    _add(sub, "scan-privacy", "gridlake.privacy_scan:cmd_scan_privacy",
         "look for raw ID numbers, phones and names outside bronze and silver")

    p = _add(sub, "maintain", "gridlake.lifecycle.maintain:cmd_maintain",
             "retention, OPTIMIZE, VACUUM and cleanup of killed writes, with a files/bytes report")
    p.add_argument("--today", default=None, help="date the retention windows end (default today, Asia/Shanghai)")
    p.add_argument("--no-optimize", action="store_true", help="skip OPTIMIZE")

    p = _add(sub, "erase", "gridlake.lifecycle.erase:cmd_erase",
             "erase persons on request from bronze, silver, quarantine and gold, old versions included")
    p.add_argument("--id-number-file", required=True, help="file with one ID number a line (15 or 18 digits)")
    p.add_argument("--reason", required=True, help="why (recorded; must not name the person)")
    p.add_argument("--requested-by", default=None, help="who asked (default: the OS user)")

    p = _add(sub, "rotate-key", "gridlake.lifecycle.rotate:cmd_rotate_key",
             "re-key gold's pseudonyms with $GRIDLAKE_PSEUDONYM_KEY_NEXT; discrepancy ids stay the same")
    p.add_argument("--force", action="store_true", help="rotate even if some discrepancy ids cannot be re-derived")

    p = _add(sub, "as-of", "gridlake.lifecycle.asof:cmd_as_of",
             "read gold exactly as a night's manifest recorded it (Delta time travel)")
    p.add_argument("--night", required=True, help="delivery night YYYY-MM-DD")
    p.add_argument("--sql", default=None, help="Spark SQL over the night's gold tables")
    p.add_argument("--limit", type=int, default=50)

    _add(sub, "airflow-ui", "tools.airflow_local:cmd_airflow_ui", "start the Airflow UI on 127.0.0.1")
    return parser


def _resolve(handler: str) -> Callable[[argparse.Namespace], int]:
    module, func = handler.split(":")
    return getattr(importlib.import_module(module), func)


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False, console=_console())],
        force=True,
    )
    for noisy in ("py4j", "great_expectations", "urllib3", "matplotlib", "airflow", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from gridlake.sanitise import install_log_filter

    install_log_filter()


def _console():
    from rich.console import Console

    return Console(stderr=True)


#: what stops Python writing the bytecode of the modules it compiles (``python -B`` sets the same flag)
NO_BYTECODE_ENV = "PYTHONDONTWRITEBYTECODE"


def write_bytecode() -> bool:
    """Let this process, and every process it starts, write the bytecode of the modules it compiles.

    As ``make`` does (Makefile: ``unexport PYTHONDONTWRITEBYTECODE``), for a command run without it: a shell or
    image that sets the variable (many container images do) made every process of a night compile PySpark,
    Great Expectations, pandas and ours from source each time it started: the night's own process, Spark's
    Python workers, the exports' worker processes and Airflow's. Reading bytecode never depended on it, so
    this only matters until the modules have been compiled once; where the files cannot be written (a
    read-only image), Python goes on without them, as before. Returns whether it was off."""
    was_off = bool(os.environ.pop(NO_BYTECODE_ENV, None)) or sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    return was_off


def main(argv: list[str] | None = None) -> int:
    from gridlake.permissions import apply_umask

    write_bytecode()  # before any import below and before Spark's JVM (and its Python workers) inherit the env
    apply_umask()  # everything written from here on is for the service user only (gridlake.permissions)
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if getattr(args, "data", None):
        os.environ["GRIDLAKE_DATA"] = os.path.abspath(args.data)
    if getattr(args, "profile", None):
        os.environ["GRIDLAKE_PROFILE"] = args.profile
    try:
        return int(_resolve(args.handler)(args) or 0)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:  # the message, not a JVM stack, for the user
        from gridlake.errors import GridlakeError

        if isinstance(exc, GridlakeError):
            log.error("%s", exc)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
