"""Stage ``reports``: what the night's readers get besides the officers' lists.

1. the district report for supervisors and the district office (:mod:`jobs.reports.district`);
2. the delivery report for data engineers: headers, vocabularies, date forms, files ignored
   (:mod:`jobs.reports.delivery`);
3. the quality report and GX Data Docs for auditors (:mod:`jobs.reports.quality`), last, so it
   sees every other stage of the night in the manifest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobs.reports import delivery, district, quality

if TYPE_CHECKING:
    from gridlake.context import RunContext


def run(ctx: RunContext) -> dict[str, Any]:
    """Write the night's three reports; returns their paths and counts for the manifest."""
    stats: dict[str, Any] = dict(district.run(ctx) or {})
    stats["delivery"] = delivery.run(ctx)
    stats["quality"] = quality.run(ctx)
    return stats
