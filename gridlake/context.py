"""What a stage gets: :class:`RunContext` (settings, the Spark session, the night, its manifest).

A stage is ``run(ctx: RunContext) -> dict`` (see :data:`gridlake.pipeline.STAGES`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from gridlake.config import Settings
    from gridlake.manifest import Manifest


@dataclass
class RunContext:
    """What a stage gets: settings, the Spark session, the night and its manifest."""

    settings: Settings
    spark: SparkSession
    run_date: dt.date
    run_id: str
    manifest: Manifest
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def date_str(self) -> str:
        return self.run_date.isoformat()

    def audit(self, layer: str, table: str, df: DataFrame, table_rows: int | None = None,
              whole: DataFrame | None = None) -> dict[str, Any]:
        """Validate ``df`` (about to be published as ``layer.table``) with its GX suite; with ``table_rows``,
        ``df`` is the night's changes to a table kept one row per row id, which then holds ``table_rows`` rows
        (and is ``whole``, for the expectations about a share of its rows: :func:`gridlake.quality.gate.audit_dataframe`).

        Raises :class:`gridlake.errors.QualityGateError` when an error-level expectation
        fails; warnings are recorded in the manifest and the run goes on. A gold frame is then
        scanned for raw personal data (:func:`gridlake.privacy_gate.check_gold_frame`): a hit
        raises :class:`gridlake.errors.PrivacyError` and the frame is not published.
        """
        from gridlake.quality.gate import audit_dataframe

        result = audit_dataframe(self, layer, table, df, table_rows, whole)
        self.manifest.record_quality(f"{layer}.{table}", result)
        if layer == "gold":
            from gridlake.privacy_gate import check_gold_frame

            check_gold_frame(self, table, df)
        return result
