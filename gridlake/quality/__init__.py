"""Data quality: Great Expectations suites kept in ``expectations/``, the write-audit-publish gate,
sanitised results (``quality.results``), offline Data Docs and the per-night quality report.

Great Expectations is imported here, before anything Airflow-related, and its loggers are
set to WARNING (it floods the log otherwise). Personal data never reaches quality output:
results keep counts and surrogate row ids only (see :mod:`gridlake.quality.sanitise`).
"""

from __future__ import annotations

import logging
import warnings

# GX's pandas regex check calls ``str.contains`` with the suite's pattern; a pattern with groups makes pandas
# warn that the groups are not extracted, which is not asked for (gridlake/quality/engines.py)
warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression, and has match groups")

for _name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
    logging.getLogger(_name).setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402  (must come before Airflow imports)

logging.getLogger("great_expectations").setLevel(logging.WARNING)

DIMENSIONS = ("completeness", "uniqueness", "validity", "consistency", "accuracy", "timeliness")
SEVERITIES = ("error", "warning")

__all__ = ["DIMENSIONS", "SEVERITIES", "gx"]
