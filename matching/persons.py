"""Person matching across sources on the validated ID number, with name and phone as corroboration.

Used by the gold helper, which pseudonymises ``id_number`` into a person key; nothing
here logs or exports personal data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

PERSON_MATCH_COLUMNS = ("source", "record_id", "role", "id_number", "sources_seen", "records_seen",
                        "name_corroborated", "phone_corroborated", "name_conflict", "match_level")


def match_persons(mentions: DataFrame) -> DataFrame:
    """Link person mentions that share a validated 18-digit ID number.

    ``mentions``: source, record_id, role, id_number (validated, may be null), name, phone
    (normalised, may be null). Returns one row per mention with an ID: how many sources and
    records mention the same ID, whether the name/phone agree with the ID's most frequent
    name/phone (corroboration), ``name_conflict`` (the same ID carries different names:
    one ID, two people, or a typo — for a human to check), and ``match_level``:
    ``id+name+phone`` | ``id+name`` | ``id+phone`` | ``id_only`` | ``id_conflict``.
    Names and phones are not in the output.
    """
    m = mentions.where(F.col("id_number").rlike(r"^\d{17}[\dX]$"))
    name = F.regexp_replace(F.trim(F.col("name")), r"\s+", "")
    m = m.withColumn("_name", F.when(name != "", name)).withColumn("_phone", F.col("phone"))
    by_id = Window.partitionBy("id_number")

    def modal(col: str) -> DataFrame:
        w = Window.partitionBy("id_number").orderBy(F.desc("n"), F.asc(col))
        return (m.where(F.col(col).isNotNull()).groupBy("id_number", col).agg(F.count(F.lit(1)).alias("n"))
                .withColumn("_r", F.row_number().over(w)).where("_r = 1").select("id_number", F.col(col).alias(col + "_mode")))

    names = m.where(F.col("_name").isNotNull()).groupBy("id_number").agg(
        F.countDistinct("_name").alias("_n_names"))
    out = (m.join(modal("_name"), "id_number", "left").join(modal("_phone"), "id_number", "left")
           .join(names, "id_number", "left")
           .withColumn("sources_seen", F.size(F.collect_set("source").over(by_id)))
           .withColumn("records_seen", F.count(F.lit(1)).over(by_id)))
    name_ok = F.coalesce(F.col("_name") == F.col("_name_mode"), F.lit(False))
    phone_ok = F.coalesce(F.col("_phone") == F.col("_phone_mode"), F.lit(False))
    conflict = F.coalesce(F.col("_n_names") > 1, F.lit(False))
    level = (F.when(conflict, "id_conflict").when(name_ok & phone_ok, "id+name+phone").when(name_ok, "id+name")
             .when(phone_ok, "id+phone").otherwise("id_only"))
    return out.select("source", "record_id", F.coalesce("role", F.lit("person")).alias("role"), "id_number",
                      "sources_seen", "records_seen", name_ok.alias("name_corroborated"),
                      phone_ok.alias("phone_corroborated"), conflict.alias("name_conflict"), level.alias("match_level"))
