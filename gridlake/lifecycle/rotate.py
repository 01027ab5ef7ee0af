"""``gridlake rotate-key``: re-key gold's pseudonyms under a new key version; no discrepancy changes identity.

Steps (refused while a night runs):

1. The current key (``$GRIDLAKE_PSEUDONYM_KEY``, checked against the key registry) and the next key
   (``$GRIDLAKE_PSEUDONYM_KEY_NEXT``; the demo profile makes a random one).
2. A mapping old pseudonym -> new pseudonym from every validated ID number silver still holds
   (declarations, rental landlords, police and mediation persons, family planning). Pseudonyms whose
   person silver no longer holds (erased, or past retention) have no new value: they become null, so
   no gold row keeps a pseudonym under the old key.
3. Every discrepancy's detection id is recomputed under the old key from its rule code, subject and
   pseudonym and compared with the one the rules produce today (the alias, or the id itself): a
   mismatch means the rules' identity changed and the rotation stops before writing anything.
4. ``gold.discrepancies`` (and any other gold table with ``person_key``) rewritten with the new
   pseudonyms in one commit each; ``gold.discrepancy_aliases`` rewritten: detection id under the new
   key -> the carried discrepancy id (:mod:`gridlake.lifecycle.identity`).
5. Every gold table's property ``gridlake.pseudonymKeyVersion`` set to the new version; the key registry
   (``<lake>/_keys/registry.json``: versions and fingerprints, never keys) names the new version current,
   so a night still using the old key fails closed; the demo's local key file is replaced.

The old key can then be destroyed: nothing in the current gold version needs it (the operator steps
are in docs/reliability.md, "Key rotation").
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, Any

from gridlake.config import Settings, load_settings
from gridlake.errors import GridlakeError
from gridlake.lifecycle import delta_ops, lake
from gridlake.lifecycle.identity import ALIAS_TABLE, ALIASES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: silver columns holding validated 18-digit ID numbers (several joined by ';').
ID_COLUMNS = ("id_number", "landlord_id", "person_ids", "party_ids", "person_id")


class RotationError(GridlakeError):
    """The rotation cannot proceed safely; nothing was written."""


def silver_ids(spark: SparkSession, settings: Settings) -> DataFrame:
    """Distinct validated ID numbers (column ``id_number``) held anywhere in silver."""
    from pyspark.sql import functions as F

    frames = []
    for _layer, name in lake.list_tables(settings, ("silver",)):
        if name.startswith("_"):
            continue
        df = spark.read.format("delta").load(settings.table_path("silver", name))
        for c in (c for c in ID_COLUMNS if c in df.columns):
            frames.append(df.select(F.explode(F.split(F.col(c), ";")).alias("id_number")))
    if not frames:
        return spark.createDataFrame([], "id_number string")
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.select(F.upper(F.trim("id_number")).alias("id_number")).where(F.length("id_number") > 0).distinct()


def subject_column() -> Column:
    """The subject of a discrepancy as the rules build it: the house, else ``source:record_id``."""
    from pyspark.sql import functions as F

    return F.coalesce(F.col("house_code"), F.concat_ws(":", "source", "record_id"))


def rotate(spark: SparkSession, settings: Settings, force: bool = False) -> dict[str, Any]:
    """Rotate the pseudonym key (module doc); return counts (no value)."""
    from pyspark.sql import functions as F

    from gridlake import io
    from gridlake.privacy import (
        KEY_VERSION_PROPERTY,
        current_key_version,
        discrepancy_id,
        install_local_key,
        key_fingerprint,
        load_key,
        load_next_key,
        now_utc,
        pseudonym,
        read_key_registry,
        write_key_registry,
    )

    running = lake.running_nights(settings)
    if running:
        raise RotationError(f"night(s) {', '.join(running)} running: rotate after the night finished")
    old_key, new_key = load_key(settings), load_next_key(settings)
    if key_fingerprint(old_key) == key_fingerprint(new_key):
        raise RotationError("the next key is the current key; set a new one")
    old_v = current_key_version(settings)
    new_v = old_v + 1

    ids = silver_ids(spark, settings)
    mapping = ids.select(pseudonym("id_number", old_key).alias("__old"),
                         pseudonym("id_number", new_key).alias("__new")).localCheckpoint()
    gold_tables = [n for _la, n in lake.list_tables(settings, ("gold",)) if n != ALIAS_TABLE]
    report: dict[str, Any] = {"from_version": old_v, "to_version": new_v, "tables": {}}

    disc = None
    if "discrepancies" in gold_tables:
        disc = spark.read.format("delta").load(settings.table_path("gold", "discrepancies"))
        aliases = io.read_table_or_empty(spark, settings, "gold", ALIAS_TABLE, ALIASES)
        a = aliases.select(F.col("discrepancy_id").alias("__aid"), F.col("detection_id").alias("__cur"))
        j = (disc.join(a, disc["discrepancy_id"] == a["__aid"], "left")
             .withColumn("__cur", F.coalesce("__cur", "discrepancy_id"))
             .join(mapping, F.col("person_key") == F.col("__old"), "left"))
        j = j.withColumn("__check", discrepancy_id(F.col("rule_code"), subject_column(), F.col("person_key"), old_key))
        j = j.localCheckpoint()
        mismatched = j.where(F.col("__check") != F.col("__cur")).count()
        if mismatched and not force:
            raise RotationError(f"{mismatched} discrepancies' ids cannot be recomputed from rule, subject and person "
                                "under the current key (did the rules' identity change?); nothing was written")
        orphans = j.where(F.col("person_key").isNotNull() & F.col("__new").isNull()).count()
        rekeyed = j.withColumn("person_key", F.when(F.col("person_key").isNotNull(), F.col("__new")))
        new_aliases = rekeyed.select(
            discrepancy_id(F.col("rule_code"), subject_column(), F.col("person_key"), new_key).alias("detection_id"),
            "discrepancy_id", F.lit(new_v).cast("int").alias("key_version")).localCheckpoint()
        new_disc = rekeyed.select(*disc.columns).localCheckpoint()
        io.write_table(new_disc, settings, "gold", "discrepancies", "overwrite")
        io.write_table(new_aliases, settings, "gold", ALIAS_TABLE, "overwrite")
        report["tables"]["gold.discrepancies"] = {"rows": new_disc.count(), "orphaned_pseudonyms": orphans,
                                                  "mismatched_ids": mismatched}
    for name in gold_tables:
        if name == "discrepancies":
            continue
        df = spark.read.format("delta").load(settings.table_path("gold", name))
        if "person_key" not in df.columns:
            continue
        out = (df.join(mapping, F.col("person_key") == F.col("__old"), "left")
               .withColumn("person_key", F.when(F.col("person_key").isNotNull(), F.col("__new")))
               .select(*df.columns).localCheckpoint())
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{settings.table_path('gold', name)}`").first()
        io.write_table(out, settings, "gold", name, "overwrite", partition_by=list(detail["partitionColumns"] or []))
        report["tables"][f"gold.{name}"] = {"rows": out.count()}
    for name in [n for _la, n in lake.list_tables(settings, ("gold",))]:
        delta_ops.set_properties(spark, settings, "gold", name, {KEY_VERSION_PROPERTY: str(new_v)})

    reg = read_key_registry(settings)
    versions = {int(v["version"]): v for v in reg.get("versions", [])}
    versions.setdefault(old_v, {"version": old_v, "fingerprint": key_fingerprint(old_key)})
    versions[old_v]["retired_at"] = now_utc()
    versions[new_v] = {"version": new_v, "fingerprint": key_fingerprint(new_key), "activated_at": now_utc()}
    write_key_registry(settings, {"current_version": new_v, "versions": [versions[v] for v in sorted(versions)]})
    if not os.environ.get(settings.privacy.key_env, "").strip() and settings.privacy.allow_local_key:
        install_local_key(settings, new_key)
        versions[old_v]["destroyed_at"] = now_utc()
        write_key_registry(settings, {"current_version": new_v, "versions": [versions[v] for v in sorted(versions)]})
        report["old_key"] = "destroyed (local key file replaced)"
    else:
        report["old_key"] = (f"retired: set ${settings.privacy.key_env} to the new key, remove "
                             f"${settings.privacy.key_env}_NEXT, then destroy the old key in the secret store")
    return report


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """``gridlake rotate-key [--force]``."""
    from gridlake.spark import get_spark

    settings = load_settings(args.profile, args.data)
    spark = get_spark(settings, app_name="gridlake-rotate-key")
    report = rotate(spark, settings, force=getattr(args, "force", False))
    log.info("key version %d -> %d: %s; old key %s", report["from_version"], report["to_version"],
             ", ".join(f"{t} {v['rows']} rows" for t, v in report["tables"].items()) or "no gold yet", report["old_key"])
    return 0
