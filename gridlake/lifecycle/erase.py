"""``gridlake erase --id-number-file F --reason TEXT``: erase persons on request (PIPL art. 47).

1. The ID numbers in F (one a line; 15 or 18 digits, full-width, spaces, lowercase x all accepted) are
   validated and normalised with :func:`gridlake.ids.normalize_id`. A line that is not a valid ID stops
   the erasure (its line number is named, never its value).
2. **bronze, silver, quarantine**: every row of every table in which any of those persons appears, in any
   column, nested values and the raw line of a malformed row included, in any of the forms a department
   writes (18 digits with ``x`` or ``X``, the legacy 15 digits, full-width digits, spaces or dashes
   inside), is deleted. The match runs in a pandas UDF (the values travel in the pickled function, never in
   a query plan or a log); the DELETE is a MERGE on the rows' lineage (file hash, row number).
3. **gold**: rows whose ``person_key`` is one of the persons' pseudonyms are deleted, with their follow-ups
   and key aliases, and the ``house_resolution`` and ``_person_link_state`` rows of the deleted records (the
   next night then links persons in full: gold.person_resolution changed under the saved state).
4. Every touched table: its ``delta.deletedFileRetentionDuration`` set to 0 hours and a VACUUM with zero
   retention (Delta's check lifted for this call only), a checkpoint, and every older log file deleted,
   so neither a Parquet file, an old version, nor the min/max statistics in old commit files hold the
   values; then the layer's retention is set back.
5. An erasure record (who, when, why, persons, rows per table; no ID, no pseudonym) in
   ``<lake>/_erasures/<erasure_id>.json`` and the Delta table ``_runs.erasures``.

Delivered files under ``landing/`` are the departments' originals, outside the lake: the record counts
the ones that still hold a value, for the operator to delete (``docs/reliability.md``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # noqa: F401  (resolves the pandas UDF's type hints)

from gridlake import changes
from gridlake.config import Settings, load_settings
from gridlake.errors import GridlakeError
from gridlake.ids import normalize_id
from gridlake.lifecycle import delta_ops, lake

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

LINEAGE_KEY = ("_file_sha256", "_row_number")
RECORD_TABLE = ("_runs", "erasures")
_SEPARATORS = re.compile(r"[\s\-_]+")


class ErasureError(GridlakeError):
    """An erasure request cannot be carried out as asked (invalid line, a night running)."""


def read_id_file(path: Path) -> list[str]:
    """Validated 18-digit IDs from a file (one a line, ``#`` comments and blank lines skipped)."""
    out: list[str] = []
    bad: list[int] = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        raw = line.split("#", 1)[0].strip()
        if not raw:
            continue
        id18, _reason = normalize_id(raw)
        if id18 is None:
            bad.append(n)
        else:
            out.append(id18)
    if bad:
        raise ErasureError(f"{path.name}: line(s) {', '.join(map(str, bad[:20]))} are not valid ID numbers; nothing erased")
    if not out:
        raise ErasureError(f"{path.name}: no ID number to erase")
    return sorted(set(out))


def id_forms(id18: str) -> set[str]:
    """The compact forms an ID is written in (upper case, separators removed): 18 digits, and the
    legacy 15 digits for persons born in the 1900s."""
    forms = {id18.upper()}
    if id18[6:8] == "19":
        forms.add(id18[:6] + id18[8:17])
    return forms


def compact(text: str) -> str:
    """A text as the matcher sees it: NFKC (full-width digits to ASCII), upper case, separators removed."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()


def mentions_any(text: str | None, forms: set[str] | frozenset[str]) -> bool:
    """True when ``text`` contains one of ``forms`` (see :func:`compact`)."""
    if not text:
        return False
    c = compact(text)
    return any(f in c for f in forms)


def mentions_column(df: DataFrame, forms: set[str]) -> Column:
    """Boolean Column: the row mentions one of ``forms`` anywhere (every column as JSON, nested included)."""
    from pyspark.sql import functions as F

    secret = frozenset(forms)

    @F.pandas_udf("boolean")
    def _mentions(values: pd.Series) -> pd.Series:
        return values.map(lambda v: mentions_any(v, secret))

    return _mentions(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))


def _merge_delete(spark: SparkSession, settings: Settings, layer: str, name: str, keys: DataFrame,
                  on: Iterable[str]) -> None:
    from delta.tables import DeltaTable

    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in on)
    (DeltaTable.forPath(spark, settings.table_path(layer, name)).alias("t")
     .merge(keys.alias("s"), cond).whenMatchedDelete().execute())


def erase_raw_table(spark: SparkSession, settings: Settings, layer: str, name: str, forms: set[str],
                    record_keys: dict[str, str]) -> tuple[int, list[tuple[str, str]]]:
    """Delete the rows of a bronze/silver table that mention the persons; (rows, erased (source, record_id))."""
    from pyspark.sql import functions as F

    df = spark.read.format("delta").load(settings.table_path(layer, name))
    hits = df.where(mentions_column(df, forms)).localCheckpoint()
    n = hits.count()
    if not n:
        return 0, []
    records: list[tuple[str, str]] = []
    if layer == "silver" and name in record_keys:
        records = [(name, r[0]) for r in hits.select(F.col(record_keys[name]).cast("string")).distinct().collect()]
    keys = hits.select(*LINEAGE_KEY).distinct() if all(k in df.columns for k in LINEAGE_KEY) else None
    if keys is not None and df.join(keys, list(LINEAGE_KEY), "left_semi").count() == n:
        _merge_delete(spark, settings, layer, name, keys, LINEAGE_KEY)
    else:  # no lineage, or lineage shared with rows about others: rewrite the table without the rows
        kept = df.where(~mentions_column(df, forms)).localCheckpoint()
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{settings.table_path(layer, name)}`").first()
        from gridlake import io

        io.write_table(kept, settings, layer, name, "overwrite", partition_by=list(detail["partitionColumns"] or []))
    log.info("erased %d rows from %s.%s", n, layer, name)
    return n, records


def erase_gold(spark: SparkSession, settings: Settings, pseudonyms: set[str],
               records: list[tuple[str, str]]) -> dict[str, int]:
    """Delete the persons' gold rows (by pseudonym), their follow-ups and aliases, and the resolutions
    of the erased records."""
    from pyspark.sql import functions as F

    out: dict[str, int] = {}
    gold = dict.fromkeys(n for la, n in lake.list_tables(settings, ("gold",)))
    ids: set[str] = set()
    for name in gold:
        df = spark.read.format("delta").load(settings.table_path("gold", name))
        if "person_key" in df.columns and "discrepancy_id" in df.columns:
            ids |= {r[0] for r in df.where(F.col("person_key").isin(*sorted(pseudonyms)))
                    .select("discrepancy_id").distinct().collect()}
    for name in gold:
        df = spark.read.format("delta").load(settings.table_path("gold", name))
        conds = []
        if "person_key" in df.columns:
            conds.append(F.col("person_key").isin(*sorted(pseudonyms)))
        if "discrepancy_id" in df.columns and ids:
            conds.append(F.col("discrepancy_id").isin(*sorted(ids)))
        n = 0
        if conds:
            cond = conds[0]
            for c in conds[1:]:
                cond = cond | c
            n = delta_ops.delete_where(spark, settings, "gold", name, cond)
        if name == "_person_link_state" and records:   # the erased records' mentions: their keyed hashes
            record = F.regexp_extract(F.col("record_key"), r"^(.*)#[0-9]+$", 1)
            n += delta_ops.delete_where(spark, settings, "gold", name,
                                        record.isin(*sorted({f"{s}:{r}" for s, r in records})))
        if name == "house_resolution" and records and {"source", "record_id"} <= set(df.columns):
            keys = spark.createDataFrame(sorted(set(records)), "source string, record_id string")
            m = df.join(keys, ["source", "record_id"], "left_semi").count()
            if m:
                _merge_delete(spark, settings, "gold", name, keys, ("source", "record_id"))
            n += m
        if n:
            out[f"gold.{name}"] = n
    return out


def purge_history(spark: SparkSession, settings: Settings, layer: str, name: str) -> dict[str, int]:
    """Zero-retention VACUUM, checkpoint and log purge of one touched table (module doc, step 4)."""
    path = lake.table_dir(settings, layer, name)
    files_before = sum(1 for _ in lake.data_files(path))
    delta_ops.set_properties(spark, settings, layer, name, {"delta.deletedFileRetentionDuration": "interval 0 hours"})
    delta_ops.vacuum_now(spark, settings, layer, name)
    version = delta_ops.checkpoint(spark, settings, layer, name)
    purged = delta_ops.purge_log_before(settings, layer, name, version)
    # the keys its past commits wrote (gridlake.changes) describe versions that are gone: removed with them
    forgotten = changes.forget(settings, layer, name)
    delta_ops.clear_delta_cache(spark)
    hours = settings.retention.vacuum_hours_for(layer)
    delta_ops.set_properties(spark, settings, layer, name,
                             {"delta.deletedFileRetentionDuration": f"interval {hours} hours"})
    return {"files_deleted": files_before - sum(1 for _ in lake.data_files(path)), "log_files_deleted": purged,
            "change_records_deleted": forgotten, "version": version}


def landing_files_mentioning(settings: Settings, forms: set[str]) -> int:
    """Delivered text files under ``landing/`` that still mention a person (counted, not changed)."""
    n = 0
    if not settings.landing.is_dir():
        return 0
    for f in settings.landing.rglob("*"):
        if not f.is_file() or f.suffix.lower() not in (".csv", ".txt", ".json", ".tsv"):
            continue
        raw = f.read_bytes()
        for enc in ("utf-8", "gb18030"):
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                continue
            n += int(mentions_any(text, forms))
            break
    return n


def erase(spark: SparkSession, settings: Settings, id_numbers: list[str], reason: str,
          requested_by: str | None = None) -> dict[str, Any]:
    """Erase the persons (module doc) and return the erasure record."""
    from gridlake.privacy import load_key, pseudonym_py

    if not reason.strip():
        raise ErasureError("an erasure needs a reason (--reason)")
    running = lake.running_nights(settings)
    if running:
        raise ErasureError(f"night(s) {', '.join(running)} running: erase after the night finished; nothing erased")
    forms = set().union(*(id_forms(i) for i in id_numbers))
    key = load_key(settings)
    pseudonyms = {p for p in (pseudonym_py(key, i) for i in id_numbers) if p}
    from schemas.silver import RECORD_KEYS

    rows: dict[str, int] = {}
    records: list[tuple[str, str]] = []
    touched: list[tuple[str, str]] = []
    for layer, name in lake.list_tables(settings, ("bronze", "silver")):
        n, recs = erase_raw_table(spark, settings, layer, name, forms, RECORD_KEYS)
        if n:
            rows[f"{layer}.{name}"] = n
            records.extend(recs)
            touched.append((layer, name))
    gold_rows = erase_gold(spark, settings, pseudonyms, records)
    rows.update(gold_rows)
    touched.extend(("gold", k.split(".", 1)[1]) for k in gold_rows)
    purge = {f"{la}.{n}": purge_history(spark, settings, la, n) for la, n in touched}
    record = {
        "erasure_id": dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3),
        "requested_by": requested_by or getpass.getuser(),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "reason": reason.strip(),
        "persons": len(id_numbers),
        "rows_deleted": dict(sorted(rows.items())),
        "rows_total": sum(rows.values()),
        "tables_purged": purge,
        "landing_files_still_mentioning": landing_files_mentioning(settings, forms),
    }
    write_record(spark, settings, record)
    return record


def write_record(spark: SparkSession, settings: Settings, record: dict[str, Any]) -> Path:
    """The erasure record as JSON under ``<lake>/_erasures`` and one row of ``_runs.erasures``."""
    from gridlake import io

    base = Path(settings.lake) / "_erasures" if lake.is_local(settings) else settings.data / "_erasures"
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"{record['erasure_id']}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    row = spark.createDataFrame([(record["erasure_id"], record["requested_by"], record["at"], record["reason"],
                                  record["persons"], record["rows_total"], json.dumps(record, ensure_ascii=False))],
                                "erasure_id string, requested_by string, at string, reason string, persons int, "
                                "rows_total long, record_json string")
    io.write_table(row, settings, *RECORD_TABLE, mode="append")
    return path


def cmd_erase(args: argparse.Namespace) -> int:
    """``gridlake erase --id-number-file F --reason TEXT [--requested-by NAME]``."""
    from gridlake.spark import get_spark

    settings = load_settings(args.profile, args.data)
    ids = read_id_file(Path(args.id_number_file))
    spark = get_spark(settings, app_name="gridlake-erase")
    record = erase(spark, settings, ids, args.reason, getattr(args, "requested_by", None))
    log.info("erasure %s: %d person(s), %d rows in %d tables; record in _erasures/%s.json", record["erasure_id"],
             record["persons"], record["rows_total"], len(record["rows_deleted"]), record["erasure_id"])
    if record["landing_files_still_mentioning"]:
        log.warning("%d delivered file(s) under landing/ still mention the person(s): delete them by hand",
                    record["landing_files_still_mentioning"])
    return 0
