"""Small commands: set-up."""

from __future__ import annotations

import argparse
import logging
import time

from gridlake.config import load_settings
from gridlake.spark import fetch_jars, find_java_home, jar_cache_dir, needed_jars

log = logging.getLogger(__name__)


def cmd_setup(args: argparse.Namespace) -> int:
    """Check Java and fetch the jars into the local cache (once): Delta's, and the S3A connector's when the
    profile's lake is on ``s3a://`` or ``--s3`` asks for them."""
    java = find_java_home()
    settings = load_settings(getattr(args, "profile", None), getattr(args, "data", None))
    started = time.monotonic()
    wanted = needed_jars(settings, s3=bool(getattr(args, "s3", False)))
    jars = fetch_jars(wanted)
    size = sum(p.stat().st_size for p in jars)
    log.info("Java: %s", java)
    # named by Maven coordinates: a file name such as delta-spark_4.2_2.13-4.4.0.jar reads as a run of digits
    # to the log filter (gridlake.sanitise), which would print it redacted
    names = [f"{j.group}:{j.artifact}:{j.version}" for j in wanted]
    log.info("%d jars (%.1f MB) cached in %s in %.1f s: %s", len(jars), size / 1e6, jar_cache_dir(),
             time.monotonic() - started, ", ".join(names[:4]) + (" ..." if len(names) > 4 else ""))
    return 0
