"""Discrepancy identity across key rotations: the id is assigned once and carried.

A discrepancy's id is the first 16 hex of HMAC(key, "<rule_code>|<subject>|<person_key>") under the key
in use the night it was first raised (:func:`gridlake.privacy.discrepancy_id`). The rules compute the
same *detection id* every night, so before any rotation detection id = discrepancy id. A rotation
(:mod:`gridlake.lifecycle.rotate`) cannot keep that equality (the new key gives every detection a new
id), so it writes ``gold.discrepancy_aliases``: for every discrepancy, its detection id under the new key
-> its (unchanged) discrepancy id. The gold stage maps each night's detections through that table
(:func:`carry_discrepancy_ids`) before the lifecycle, so statuses, due dates, history, verifications
(which officers send back by discrepancy id) and follow-up lists continue as if nothing happened.
After the rotation the old key is no longer needed: the carried ids are opaque tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql.types import IntegerType, StringType, StructField, StructType

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ALIAS_TABLE = "discrepancy_aliases"
ALIASES = StructType([
    StructField("detection_id", StringType(), False),    # the rules' id under the key version below
    StructField("discrepancy_id", StringType(), False),  # the id the discrepancy has carried since first raised
    StructField("key_version", IntegerType(), False),
])


def carry_discrepancy_ids(detections: DataFrame, aliases: DataFrame) -> DataFrame:
    """Tonight's detections with their carried discrepancy id (unchanged when there is no alias)."""
    from pyspark.sql import functions as F

    a = aliases.select(F.col("detection_id").alias("__det"), F.col("discrepancy_id").alias("__carried"))
    cols = detections.columns
    return (detections.join(F.broadcast(a), detections["discrepancy_id"] == a["__det"], "left")
            .withColumn("discrepancy_id", F.coalesce("__carried", "discrepancy_id"))
            .select(*cols))
