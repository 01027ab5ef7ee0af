"""Small commands: set-up."""

from __future__ import annotations

import argparse
import logging

from gridlake.spark import fetch_delta_jars, find_java_home, jar_cache_dir

log = logging.getLogger(__name__)


def cmd_setup(args: argparse.Namespace) -> int:
    """Check Java and fetch the Delta jars into the local cache (once)."""
    java = find_java_home()
    jars = fetch_delta_jars()
    log.info("Java: %s", java)
    log.info("Delta jars cached in %s: %s", jar_cache_dir(), ", ".join(p.name for p in jars))
    return 0
