"""gold.person_resolution: every person mention -> a pseudonymous person (issue 21).

A mention is one person named by one record: the declarant of a declaration (a loaded one, or one
quarantined ONLY for its ID's checksum: :func:`jobs.silver.declarations.checksum_failed`), and every
person of a police, mediation or family-planning record (silver's ``persons`` list, by position). Each
carries what the ``person`` spec (``conf/matching/person.yaml``) compares: the ID as written, the name, the
phone and the house its record resolved to (``gold.house_resolution``: this runs after house matching).
:func:`matching.person_link.resolve_persons` links and clusters them (the validated ID decides; otherwise
name plus corroboration; two different valid IDs never join), and every mention gets its person's key,
how it joined (``method``), the weight of that link (``score``, bits) and an explanation naming the other
mention and the comparison levels -- never a name, phone or ID.

The linkage runs on the driver (pandas engine). The first night links every mention and trains the model;
later nights reuse the saved model and link again only the components of the link graph that the night's new,
changed or removed mentions can reach (:mod:`matching.person_incremental`, :mod:`jobs.matching.person_state`):
the same rows as linking every mention with that model. Only the rows that changed are audited, and the table
is rewritten from the driver (:mod:`jobs.matching.person_publish`); an unchanged result commits nothing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import functions as F

from schemas.gold import PERSON_RESOLUTION

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import DataFrame, SparkSession

    from gridlake.config import Settings
    from gridlake.context import RunContext
    from matching.person_incremental import Linkage

log = logging.getLogger(__name__)

#: enforcement sources whose records name persons (silver ``persons``) -> record id column
PERSON_SOURCES: dict[str, str] = {
    "police_incidents": "incident_id",
    "mediation_cases": "case_id",
    "family_planning": "record_id",
}
#: ``method`` of a mention: joined by the same validated ID, by a corroborated score link, to the sole identified
#: bearer of its name (matching/person_bearer.py), the mention its person's links were explained against, or alone
METHODS = {"id": "id_exact", "score": "corroborated", "sole_bearer": "sole_bearer"}
MENTION_COLUMNS = ["source", "record_id", "mention_no", "role", "record_key", "name", "phone", "id_number",
                   "house_code", "id_status"]


def _houses(house_resolution: DataFrame | None, source: str) -> DataFrame | None:
    if house_resolution is None:
        return None
    return (house_resolution.where(F.col("source") == source)
            .select(F.col("record_id").alias("__rid"), F.col("house_code").alias("__house")).dropDuplicates(["__rid"]))


def _with_house(df: DataFrame, house_resolution: DataFrame | None, source: str) -> DataFrame:
    h = _houses(house_resolution, source)
    if h is None:
        return df.withColumn("house_code", F.lit(None).cast("string"))
    return df.join(h, df["record_id"] == h["__rid"], "left").withColumn("house_code", F.col("__house")) \
        .drop("__rid", "__house")


def _key(source: str) -> F.Column:
    return F.concat(F.lit(source + ":"), F.col("record_id"), F.lit("#"), F.col("mention_no").cast("string"))


def mentions(declarations: DataFrame | None, failed: DataFrame | None, enforcement: dict[str, DataFrame],
             house_resolution: DataFrame | None) -> DataFrame:
    """Every person mention (:data:`MENTION_COLUMNS`): declarants of loaded declarations (``id_status``
    ``valid``) and of declarations that failed only their ID's checksum (``checksum_failed``; a declaration
    id silver holds is taken from silver), and the persons of enforcement records (``valid`` | ``invalid`` |
    ``missing``). ``house_code``: the record's resolved house (null when unresolved). Pure."""
    from jobs.silver.columns import normalize_id

    parts = []
    if declarations is not None:
        d = declarations.select(F.col("declaration_id").alias("record_id"), F.lit(0).alias("mention_no"),
                                F.lit("declarant").alias("role"), "name", "phone", "id_number",
                                F.lit("valid").alias("id_status")).dropDuplicates(["record_id"])
        parts.append(_with_house(d, house_resolution, "declarations").withColumn("record_key", _key("declarations")))
    if failed is not None:
        f = failed.select(F.col("declaration_id").alias("record_id"), F.lit(0).alias("mention_no"),
                          F.lit("declarant").alias("role"), "name", "phone", F.col("id_text").alias("id_number"),
                          F.lit("checksum_failed").alias("id_status")).dropDuplicates(["record_id"])
        if declarations is not None:
            f = f.join(declarations.select(F.col("declaration_id").alias("record_id")), "record_id", "left_anti")
        parts.append(_with_house(f, house_resolution, "declarations").withColumn("record_key", _key("declarations")))
    for source, id_col in PERSON_SOURCES.items():
        df = enforcement.get(source)
        if df is None or "persons" not in df.columns:
            continue
        e = (df.select(F.col(id_col).alias("record_id"), F.posexplode("persons").alias("mention_no", "p"))
             .select("record_id", F.col("mention_no").cast("int").alias("mention_no"), F.lit("party").alias("role"),
                     F.col("p.name").alias("name"), F.col("p.phone").alias("phone"),
                     F.col("p.id_text").alias("id_number"))
             .withColumn("id_status", F.when(F.col("id_number").isNull(), "missing")
                         .when(normalize_id(F.col("id_number")).isNotNull(), "valid").otherwise("invalid"))
             .dropDuplicates(["record_id", "mention_no"]))
        parts.append(_with_house(e, house_resolution, source).withColumn("record_key", _key(source))
                     .withColumn("source", F.lit(source)))
    out = []
    for p in parts:
        if "source" not in p.columns:
            p = p.withColumn("source", F.lit("declarations"))
        out.append(p.select(*[F.col(c).cast("int" if c == "mention_no" else "string").alias(c) for c in MENTION_COLUMNS]))
    if not out:
        raise ValueError("person mentions: no declaration or enforcement table to read")
    result = out[0]
    for p in out[1:]:
        result = result.unionByName(p)
    return result


def resolution_frame(mention_pdf: pd.DataFrame, key: bytes, link: Callable[[pd.DataFrame], Linkage] | None = None
                     ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Link the mentions (pandas, :data:`MENTION_COLUMNS`) into persons: one row per mention in the columns
    of :data:`schemas.gold.PERSON_RESOLUTION`, and statistics (counts only). ``link`` (the mentions' linkage
    columns -> a :class:`matching.person_incremental.Linkage`) links them; without it, a full linkage with a
    model trained here (:func:`matching.person_link.resolve_persons`)."""
    from gridlake.ids import normalize_ids
    from matching.person_link import resolve_persons

    cols = [f.name for f in PERSON_RESOLUTION.fields]
    if mention_pdf.empty:
        return pd.DataFrame(columns=cols), {"mentions": 0}
    m = mention_pdf.drop_duplicates("record_key").reset_index(drop=True)
    raw = m[["record_key", "name", "phone", "id_number", "house_code"]]
    linkage_stats: dict[str, Any] = {}
    if link is None:
        res, model = resolve_persons(raw, key)
    else:
        linkage = link(raw)
        res, model, linkage_stats = linkage.persons, linkage.model, linkage.stats
    out = m[["record_key", "source", "record_id", "mention_no", "role", "id_status"]].merge(res, on="record_key")
    # whether each mention holds a valid ID (GB 11643, as person linkage reads it), once per distinct ID text,
    # on arrays of them
    codes, uniques = pd.factorize(np.asarray(m["id_number"], dtype=object), use_na_sentinel=True)
    held = np.append(normalize_ids(np.asarray(uniques, dtype=object))[0] != None, False)[codes]  # noqa: E711
    valid = pd.Series(held, index=m["record_key"])
    # a person is identified when any of its mentions holds a valid ID; its size is its mention count (array
    # counts per person: a Python function per person took 22.6 s per 100,000 mentions)
    person, _ = pd.factorize(out["person_key"], use_na_sentinel=False)
    has_valid = out["record_key"].map(valid).fillna(False).to_numpy(dtype=bool)
    out["identified"] = np.bincount(person, weights=has_valid)[person] > 0
    out["cluster_size"] = np.bincount(person)[person].astype("int32")
    single = out["method"] == "single"
    out["method"] = out["method"].map(METHODS).where(~single, "anchor")
    out.loc[single & (out["cluster_size"] == 1), "method"] = "singleton"
    out["score"] = out["weight"].astype(float).round(4)
    out["mention_no"] = out["mention_no"].astype("int32")
    stats = {"mentions": len(out), "persons": int(out["person_key"].nunique()),
             "methods": {k: int(v) for k, v in out["method"].value_counts().items()},
             "checksum_failed_declarations": int((out["id_status"] == "checksum_failed").sum()),
             "checksum_failed_linked": int(((out["id_status"] == "checksum_failed") & (out["cluster_size"] > 1)).sum()),
             "em_iterations": model.iterations}
    if linkage_stats:
        stats["linkage"] = linkage_stats
    return out[cols], stats


def _strings(values) -> np.ndarray:
    """A column as an object array of str and None (what Spark's ``toPandas`` gives for a string column)."""
    arr = pd.Series(values, dtype=object).to_numpy(dtype=object)
    return np.where(pd.isna(arr), None, arr).astype(object)


def _declarants(d: pd.DataFrame, id_col: str, status: str) -> pd.DataFrame:
    """Declarations (``declaration_id``, ``name``, ``phone``, ``id_col``) as declarant mentions, one per id."""
    return pd.DataFrame({"source": "declarations", "record_id": _strings(d["declaration_id"]), "mention_no": 0,
                         "role": "declarant", "name": _strings(d["name"]), "phone": _strings(d["phone"]),
                         "id_number": _strings(d[id_col]), "id_status": status}).drop_duplicates("record_id")


def _enforcement_frame(table, source: str, id_col: str) -> pd.DataFrame:
    """The persons of one enforcement source (``pyarrow`` table of ``id_col`` and ``persons``), one row per
    person by position (``mention_no``, from 0), as :func:`mentions` explodes them."""
    from gridlake.ids import normalize_ids

    lst = table.column("persons").combine_chunks()
    parents = pc.list_parent_indices(lst).to_numpy()
    flat = pc.list_flatten(lst)
    starts = lst.offsets.to_numpy()[:-1]
    ids = _strings(flat.field("id_text").to_pandas()) if len(flat) else np.array([], dtype=object)
    valid = normalize_ids(ids)[0] if len(ids) else ids
    status = np.where(pd.isna(ids), "missing", np.where(pd.isna(valid), "invalid", "valid")).astype(object)
    return pd.DataFrame({
        "source": source,
        "record_id": _strings(table.column(id_col).combine_chunks().take(pa.array(parents)).to_pandas()),
        "mention_no": (np.arange(len(flat)) - starts[parents]).astype("int32"),
        "role": "party",
        "name": _strings(flat.field("name").to_pandas()) if len(flat) else ids,
        "phone": _strings(flat.field("phone").to_pandas()) if len(flat) else ids,
        "id_number": ids,
        "id_status": status,
    }).drop_duplicates(["record_id", "mention_no"])


def lake_mention_frame(spark: SparkSession, settings: Settings, tables: dict[str, DataFrame],
                       failed: DataFrame | None,
                       house_codes: pd.DataFrame | Callable[[], pd.DataFrame] | None = None) -> pd.DataFrame | None:
    """:func:`mentions` of the lake as a pandas frame (:data:`MENTION_COLUMNS`), the same rows: the silver
    ``tables``' columns it reads and ``gold.house_resolution``'s houses are read by ``gridlake.io.read_columns``
    (``deltalake`` into this process, no Spark job, where the log is trusted; else Spark), joined here; the
    declarations that failed only their checksum come from Spark (``failed``: a few thousand rows). None when
    no table names persons. ``house_codes`` (``source, record_id, house_code``): the houses as
    ``gold.house_resolution`` will hold them once the night's resolution is published
    (:meth:`jobs.matching.house_publish.ResolvedNight.house_codes`), read instead of the table; or a function
    giving them, called once the silver tables' mentions are read (it may wait for another thread).

    On a district's 1,309,122 mentions, :func:`mentions` and ``toPandas`` took 24.2-33.0 s, this 7.9-10.1 s
    (the incremental night's lake, one process, alternately, three runs each), for the same frame row for row."""
    from gridlake import io

    sources = [s for s in PERSON_SOURCES if s in tables and "persons" in tables[s].columns]
    if "declarations" not in tables and not sources:
        return None
    parts = []
    if "declarations" in tables:
        parts.append(_declarants(io.read_columns(spark, settings, "silver", "declarations",
                                                 ["declaration_id", "name", "phone", "id_number"]).to_pandas(),
                                 "id_number", "valid"))
    if failed is not None:
        f = _declarants(failed.select("declaration_id", "name", "phone", "id_text").toPandas(), "id_text",
                        "checksum_failed")
        if parts:
            f = f[~f["record_id"].isin(parts[0]["record_id"])]
        parts.append(f)
    for source in sources:
        parts.append(_enforcement_frame(
            io.read_columns(spark, settings, "silver", source, [PERSON_SOURCES[source], "persons"]),
            source, PERSON_SOURCES[source]))
    out = pd.concat(parts, ignore_index=True)
    out["mention_no"] = out["mention_no"].astype("int32")
    if house_codes is not None:
        h = house_codes() if callable(house_codes) else house_codes
    else:
        hr = io.read_columns(spark, settings, "gold", "house_resolution", ["source", "record_id", "house_code"]) \
            if io.table_exists(spark, settings, "gold", "house_resolution") else None
        h = hr.to_pandas() if hr is not None else None
    if h is not None and len(h):
        h = pd.DataFrame({"source": _strings(h["source"]), "record_id": _strings(h["record_id"]),
                          "house_code": _strings(h["house_code"])}).drop_duplicates(["source", "record_id"])
        out = out.merge(h[h["source"].isin(out["source"].unique())], on=["source", "record_id"], how="left")
        out["house_code"] = _strings(out["house_code"])
    else:
        out["house_code"] = None
    key = out["source"] + ":" + out["record_id"].fillna("") + "#" + out["mention_no"].astype(str)
    out["record_key"] = np.where(out["record_id"].isna(), None, key).astype(object)   # null, as Spark's concat
    return out[MENTION_COLUMNS]


def run(ctx: RunContext, tables: dict[str, DataFrame], failed: DataFrame | None,
        house_codes: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
        ready: Callable[[], None] | None = None, beside: bool = False) -> dict[str, Any]:
    """Compute gold.person_resolution from silver and gold.house_resolution (incremental when the last linkage's
    model and state are still the lake's: :mod:`jobs.matching.person_state`; an unchanged result commits
    nothing); audited and privacy-gated like every gold table. Returns counts.

    ``house_codes``: the records' houses as the night's house resolution will publish them, or a function
    giving them once the mentions are read (else read from the table); ``ready()`` is called before anything
    is published and raises when that publication failed (:func:`jobs.matching.house_publish.beside`).
    ``beside``: a full linkage hashes its state in a forked child while this process links
    (:func:`matching.person_incremental.link_persons`)."""
    from gridlake.privacy import load_key
    from jobs.matching import person_publish, person_state
    from matching.person_incremental import link_persons, state_hash_key
    from matching.spec import load_spec

    spark, settings = ctx.spark, ctx.settings
    t0 = time.monotonic()
    pdf = lake_mention_frame(spark, settings, tables, failed, house_codes)
    if pdf is None:
        return {"mentions": 0}
    key = load_key(settings)
    spec = load_spec("person")
    spec_print = person_state.fingerprint(spec)
    model, previous, why, table, read_version = person_state.load(ctx, spec, spec_print)
    t1 = time.monotonic()
    done: list[Linkage] = []

    def link(raw: pd.DataFrame) -> Linkage:
        done.append(link_persons(raw, key, spec, model, previous, state_hash_key(key), beside=beside))
        if why and done[0].stats.get("mode") == "full":
            done[0].stats["reason"] = why
        return done[0]

    frame, stats = resolution_frame(pdf, key, link)
    t2 = time.monotonic()
    if ready is not None:
        ready()  # the houses published (their audit passed) before any person is
    t3 = time.monotonic()
    # the night's changes audited (quality suite, privacy gate), the table rewritten; audited whole when most changed
    stats["version"], published = person_publish.publish(ctx, frame, table, read_version)
    seconds = published.pop("seconds")
    stats["published"] = published
    t4 = time.monotonic()
    if done:
        person_state.save(ctx, spec, spec_print, done[0], stats["version"])
    # mentions read into the driver, linked there (pandas engine), checked (quality suite and privacy gate),
    # written, and the linkage's state saved for the next night
    stats["seconds_by_part"] = {"mentions": round(t1 - t0, 1), "linkage": round(t2 - t1, 1),
                                "waiting_for_houses": round(t3 - t2, 1), **seconds,
                                "state": round(time.monotonic() - t4, 1)}
    stats["seconds"] = round(time.monotonic() - t0, 1)
    log.info("persons: %d mentions -> %d persons (%s)", stats["mentions"], stats.get("persons", 0),
             stats.get("methods"))
    return stats
