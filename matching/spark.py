"""Thin Spark adapter over the engine-agnostic core.

Column helpers (used by the silver helper for every table with an address):

* :func:`address_columns` -> ``struct<address_norm: string, addr: ADDRESS_STRUCT>``
* :func:`normalized_address` -> string, :func:`parsed_address` -> ``ADDRESS_STRUCT``

All three are vectorised pandas UDFs over :mod:`matching.address` (``address_columns`` through
:func:`matching.engine.parsed_addresses`: one normalisation per text).
The linkage itself (blocking joins, vectorised comparisons, scoring) is in
:func:`link_spark`, further below.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

from schemas.address import ADDRESS_COMPONENTS, ADDRESS_STRUCT

ADDRESS_COLUMNS_STRUCT = StructType([
    StructField("address_norm", StringType(), True),
    StructField("addr", ADDRESS_STRUCT, True),
])


def _parse_series(texts: pd.Series) -> pd.DataFrame:
    from matching.engine import parsed_addresses

    return parsed_addresses(texts)[list(ADDRESS_COMPONENTS)].set_axis(texts.index)


@pandas_udf(StringType())
def _normalize_udf(texts: pd.Series) -> pd.Series:
    from matching.address import normalize

    return texts.map(lambda t: normalize(t) if isinstance(t, str) else None)


@pandas_udf(ADDRESS_STRUCT)
def _parse_udf(texts: pd.Series) -> pd.DataFrame:
    return _parse_series(texts)


#: ``address_norm`` then the components, flat: what one pass of :func:`matching.engine.parsed_addresses` returns
_NORM_AND_PARSED = StructType([StructField("address_norm", StringType(), True), *ADDRESS_STRUCT.fields])


@pandas_udf(_NORM_AND_PARSED)
def _norm_and_parse_udf(texts: pd.Series) -> pd.DataFrame:
    from matching.engine import parsed_addresses

    return parsed_addresses(texts).set_axis(texts.index)


def normalized_address(col: Column) -> Column:
    """The normalised address text of ``col`` (string or null)."""
    return _normalize_udf(col)


def parsed_address(col: Column) -> Column:
    """The parsed components of ``col`` as :data:`schemas.address.ADDRESS_STRUCT`."""
    return _parse_udf(col)


def address_columns(col: Column) -> Column:
    """``struct<address_norm, addr>`` for the raw address ``col`` in one vectorised pass.

    One pandas UDF (:func:`matching.engine.parsed_addresses`): each distinct text of a batch is normalised
    once and each distinct normalised text parsed once, the same values as :func:`normalized_address`
    and :func:`parsed_address` (which normalise twice). The flat result is nested here, in Spark.
    Usage: ``df.withColumn("_a", address_columns(F.col("address_raw")))
    .select("*", "_a.address_norm", "_a.addr").drop("_a")``.
    """
    from pyspark.sql import functions as F

    flat = _norm_and_parse_udf(col)
    return F.struct(flat["address_norm"].alias("address_norm"),
                    F.struct(*[flat[c].alias(c) for c in ADDRESS_COMPONENTS]).alias("addr"))


# --- linkage at scale -------------------------------------------------------------------------

def _key_col(key: str, col=None):
    from pyspark.sql import functions as F

    from matching.spec import parse_key

    base, start, stop = parse_key(key)
    c = F.col(base) if col is None else col
    if start is None and stop is None:
        return c
    # python slice semantics for the two forms used in specs: [:n] and [-n:]
    if start is None and stop is not None and stop > 0:
        sub = F.substring(c, 1, stop)
    elif start is not None and start < 0 and stop is None:
        sub = F.substring(c, start, -start)
    else:
        raise ValueError(f"unsupported slice in blocking key {key!r}")
    return F.when(F.length(c) >= 3, sub)


def _rule_keys(df, rules, id_name):
    """One row per (record, rule) whose key is complete: ``id_name, _rule (index), _key``.

    All rules of a pass become one exploded frame, so blocking is one join on ``(_rule, _key)``
    instead of a join (and a shuffle or three) per rule. A key joins only when every component
    is present, as an equi-join on the components would.
    """
    from pyspark.sql import functions as F

    entries = []
    for i, rule in enumerate(rules):
        cols = [_key_col(k).cast("string") for k in rule]
        complete = cols[0].isNotNull()
        for c in cols[1:]:
            complete = complete & c.isNotNull()
        entries.append(F.struct(F.lit(i).alias("_rule"), F.when(complete, F.concat_ws("\x1f", *cols)).alias("_key")))
    return (df.select(F.col("_id").alias(id_name), F.explode(F.array(*entries)).alias("_b"))
            .select(id_name, "_b._rule", "_b._key").where(F.col("_key").isNotNull()))


def block_spark_info(left, right, spec, small_left: bool = False):
    """``(pairs, vague)``: candidate pairs ``(_id_l, _id_r)`` (distinct) and ``(_id_l, _too_vague)`` — the
    rules skipped for a left record because its key matches more than ``spec.max_block_size`` right
    records. ``blocking_fallback`` rules run only for the left records the main rules found nothing for.
    All joins; nothing reaches the driver. The main pass's pairs are checkpointed (on the executors)
    because the fallback pass and the caller both read them. ``small_left`` (an incremental night's few
    records): the right side's keys are filtered by a broadcast of the left's before they are counted."""
    from pyspark.sql import functions as F

    def run(rules, lside):
        lk = _rule_keys(lside, rules, "_id_l")
        rk = _rule_keys(right, rules, "_id_r")
        if small_left:  # a few left records: keep only right keys they have (broadcast filter, no shuffle)
            rk = rk.join(F.broadcast(lk.select("_rule", "_key").distinct()), ["_rule", "_key"], "left_semi")
        vague = None
        if spec.max_block_size is not None:
            sizes = rk.groupBy("_rule", "_key").count()
            lk = lk.join(sizes, ["_rule", "_key"], "inner")
            names = F.array(*[F.lit("+".join(r)) for r in rules])
            vague = (lk.where(F.col("count") > spec.max_block_size)
                     .select("_id_l", F.element_at(names, F.col("_rule") + 1).alias("_rule")))
            lk = lk.where(F.col("count") <= spec.max_block_size).drop("count")
        return lk.join(rk, ["_rule", "_key"]).select("_id_l", "_id_r"), vague

    pairs, vague = run(spec.blocking, left)
    vagues = [v for v in (vague,) if v is not None]
    pairs = pairs.distinct()
    if spec.blocking_fallback:
        pairs = pairs.localCheckpoint(eager=True)
        rest = left.join(pairs.select(F.col("_id_l").alias("_id")).distinct(), "_id", "left_anti")
        more, mv = run(spec.blocking_fallback, rest)
        pairs = pairs.unionByName(more).distinct()
        vagues += [v for v in (mv,) if v is not None]
    if vagues:
        allv = vagues[0] if len(vagues) == 1 else vagues[0].unionByName(vagues[1])
        vague = allv.groupBy("_id_l").agg(F.concat_ws("|", F.array_sort(F.collect_set("_rule"))).alias("_too_vague"))
    else:
        vague = left.select(F.col("_id").alias("_id_l"), F.lit(None).cast("string").alias("_too_vague")).limit(0)
    return pairs, vague


def affected_left(left, changed_right, spec):
    """Left ids (``_id``, distinct) whose linkage may change when ``changed_right`` rows change.

    ``changed_right`` holds the old and the new version of every right record that was added,
    removed or altered. A left record's candidates and block sizes depend only on the right records
    sharing one of its blocking keys (main or fallback rules: ``max_block_size`` counts right records
    only), so with the model fixed every other left record would get the same decision again. This is
    what makes an incremental linkage equal to a full one.
    """
    rules = list(spec.blocking) + list(spec.blocking_fallback or ())
    lk = _rule_keys(_transform_columns(left, spec), rules, "_id")
    rk = _rule_keys(_transform_columns(changed_right, spec), rules, "_id_r").select("_rule", "_key").distinct()
    return lk.join(rk, ["_rule", "_key"], "left_semi").select("_id").distinct()


def block_spark(left, right, spec):
    """Candidate pairs ``(_id_l, _id_r)``: see :func:`block_spark_info`."""
    return block_spark_info(left, right, spec)[0]


def _transform_udf(transform: str):
    def tf(v: pd.Series) -> pd.Series:
        from matching.compare import transform_value

        return v.map(lambda x: transform_value(str(x), transform) if isinstance(x, str) else None)

    return pandas_udf(tf, StringType())


def _transform_columns(df, spec):
    """Apply the comparisons' transforms (e.g. ``lane``) to their columns, as the pandas engine's
    ``prepare`` does, so blocking joins see the same values as the comparisons."""
    from pyspark.sql import functions as F

    for comp in spec.comparisons:
        if comp.transform not in (None, "nfkc") and len(comp.columns) == 1 and comp.columns[0] in df.columns:
            c = comp.columns[0]
            df = df.withColumn(c, _transform_udf(comp.transform)(F.col(c)))
    return df


#: ``candidates`` of :func:`link_spark` with ``top_k`` (as :func:`matching.engine.top_candidates` writes them)
CANDIDATES_TYPE = "array<struct<house_code:string,weight:double,why:string>>"


def _out_schema():
    from pyspark.sql.types import BooleanType, DoubleType, IntegerType, LongType

    types = {"_pass": IntegerType(), "_compatible": BooleanType(), "_same_text": BooleanType(), "_n": LongType(),
             "weight": DoubleType(), "score": DoubleType()}
    from matching.partitioned import OUT_COLUMNS

    return StructType([StructField(c, types.get(c, StringType()), True) for c in OUT_COLUMNS])


def _route_key(key: str, spec):
    """A route's partition key as Spark computes it: the blocking key on the value the engine blocks on
    (after the comparison's transform, e.g. ``lane``), then sliced as the key says."""
    from pyspark.sql import functions as F

    from matching.spec import parse_key

    base = parse_key(key)[0]
    col = F.col(base)
    for comp in spec.comparisons:      # as matching.engine.prepare: the last transform of the column wins
        if comp.transform not in (None, "nfkc") and comp.columns == (base,):
            col = _transform_udf(comp.transform)(F.col(base))
    return _key_col(key, col).cast("string")


def _fan_out(routes, spec):
    """How many partitions of a pass a record goes to: the routes whose key it has."""
    from pyspark.sql import functions as F

    out = F.lit(0)
    for r in routes:
        out = out + F.when(_route_key(r.key, spec).isNotNull(), 1).otherwise(0)
    return out


def _routed(df, routes, spec, buckets: int):
    """One row per (record, route whose key it has): ``_g`` (route), ``_pk`` (key value), ``_b`` (bucket)."""
    from pyspark.sql import functions as F

    entries = [F.struct(F.lit(g).alias("_g"), _route_key(r.key, spec).alias("_pk")) for g, r in enumerate(routes)]
    return (df.select("*", F.explode(F.array(*entries)).alias("_r")).select("*", "_r._g", "_r._pk").drop("_r")
            .where(F.col("_pk").isNotNull()).withColumn("_b", F.pmod(F.xxhash64("_pk"), F.lit(buckets))))


def _partition_pass(lside, right, routes, spec, model, pass_no: int, buckets: int, small_left: bool,
                    top_k: int = 0):
    """Co-group the pass's queries and right records by (route, bucket) and run the engine in each group."""
    from pyspark.sql import functions as F

    from matching.partitioned import run_partition

    lr = _routed(lside, routes, spec, buckets)
    rr = _routed(right, routes, spec, buckets)
    if small_left:  # a few queries: only the right records sharing a route key with one (blocks stay whole)
        rr = rr.join(F.broadcast(lr.select("_g", "_pk").distinct()), ["_g", "_pk"], "left_semi")

    def run(key, lpdf, rpdf):
        return run_partition(lpdf, rpdf, spec, model, routes[int(key[0])], pass_no, top_k)

    return lr.groupBy("_g", "_b").cogroup(rr.groupBy("_g", "_b")).applyInPandas(run, _out_schema())


def _forced_rows(forced, left, right, spec):
    """Comparison levels of the forced pairs (a delivered code and its record), as ``p`` rows."""
    from pyspark.sql import functions as F

    from matching.partitioned import forced_pair_rows

    lp = left.select(*[F.col(c).alias(f"l_{c}") for c in left.columns])
    rp = right.select(*[F.col(c).alias(f"r_{c}") for c in right.columns])
    pairs = (forced.select("_id_l", "_id_r").distinct()
             .join(lp, F.col("_id_l") == F.col("l__id")).join(rp, F.col("_id_r") == F.col("r__id"))
             .drop("_id_l", "_id_r"))

    def run(batches):
        for pdf in batches:
            yield forced_pair_rows(pdf, spec)

    return pairs.mapInPandas(run, _out_schema())


def _held(df, held: list | None):
    """``df`` persisted and materialised, and kept in ``held`` to be unpersisted by the caller (a local
    checkpoint would stay in the block manager until the JVM collects it: a long-lived session, night
    after night, would accumulate them)."""
    df = df.persist()
    df.count()
    if held is not None:
        held.append(df)
    return df


def _linkage(left, right, spec, model, buckets: int, small_left: bool, forced=None, top_k: int = 0,
             held: list | None = None):
    """Output rows (``matching.partitioned.OUT_COLUMNS``) of the whole linkage: decisions (``d``) with a
    ``model``, else level-pattern counts (``c``). ``left`` carries the routing flags (see :func:`link_spark`);
    ``top_k``: the decisions of unresolved records carry their best candidates (``_cands``, JSON text).
    Each pass's output is persisted and materialised (read for its decisions, the onward queries and the
    reduction); they are appended to ``held`` for the caller to release once it has read the result."""
    from pyspark.sql import functions as F

    from matching.partitioned import FALLBACK, FORCED, MAIN, plan_routes, reduce_queries

    main, fallback = plan_routes(spec.blocking, spec), plan_routes(spec.blocking_fallback, spec)
    local = F.col("_local")
    o0 = _partition_pass(left.where(F.col("_fan0") >= 1), right, main, spec, model, MAIN, buckets, small_left,
                         top_k)
    o0 = _held(o0, held)
    outs = [o0.where(F.col("_kind").isin("d", "c"))]
    far = [o0.where(F.col("_kind").isin("p", "v"))]
    # queries their main partition decided with their delivered code (matching.partitioned.run_partition): not
    # sent on to the fallback pass nor to the reduction
    verified = o0.where((F.col("_kind") == "d") & (F.col("_pass") == FORCED)).select(F.col("_id_l").alias("_id"))
    undecided = left.where(~local)
    if forced is not None:   # read by the fallback pass and the reduction's markers: the anti-join computed once
        undecided = _held(undecided.join(verified, "_id", "left_anti"), held)
    if fallback:
        onward = o0.where(F.col("_kind") == "f").select(F.col("_id_l").alias("_id"), F.col("_rules").alias("_prev"))
        l1 = undecided.where(F.col("_fan1") >= 1).unionByName(left.where(local & (F.col("_fan0") == 0)
                                                                          & (F.col("_fan1") >= 1))).withColumn(
            "_prev", F.lit(None).cast("string"))
        l1 = l1.unionByName(left.where(local & (F.col("_fan1") >= 1)).join(onward, "_id"))
        o1 = _held(_partition_pass(l1, right, fallback, spec, model, FALLBACK, buckets, small_left, top_k), held)
        outs.append(o1.where(F.col("_kind").isin("d", "c")))
        far.append(o1.where(F.col("_kind").isin("p", "v")))
    if model is not None and forced is not None:
        data = [c for c in left.columns if c not in ("_fan0", "_fan1", "_local", "_next", "_forced_id")]
        far.append(_forced_rows(forced.join(verified.withColumnRenamed("_id", "_id_l"), "_id_l", "left_anti"),
                                left.select(*data), right, spec))
    markers = undecided.select(F.lit("v").alias("_kind"), F.col("_id").alias("_id_l"), F.lit(MAIN).alias("_pass"))
    rows = markers.unionByName(far[0], allowMissingColumns=True)
    for f in far[1:]:
        rows = rows.unionByName(f)

    def reduce(pdf):
        return reduce_queries(pdf, spec, model, top_k)

    reduced = (rows.select(*_out_schema().fieldNames()).groupBy(F.pmod(F.xxhash64("_id_l"), F.lit(buckets)))
               .applyInPandas(reduce, _out_schema()))
    outs.append(reduced)
    if model is not None:   # no key of any rule: nothing to compare
        outs.append(left.where(local & (F.col("_fan0") == 0) & (F.col("_fan1") == 0)).select(
            F.lit("d").alias("_kind"), F.col("_id").alias("_id_l"), F.lit("unresolved").alias("method"),
            F.lit("unresolved=no_candidate").alias("explanation")))
    out = outs[0].unionByName(outs[1], allowMissingColumns=True) if len(outs) > 1 else outs[0]
    for o in outs[2:]:
        out = out.unionByName(o, allowMissingColumns=True)
    return out


def _id_hash(df, seed: int):
    """A number per record drawn from its ``_id`` and ``seed`` alone, for samples that stay the same however
    the input is partitioned: Spark seeds ``rand(seed)`` per partition, so a sample drawn with it changed with
    the partitioning (adaptive execution, shuffle partitions, files compacted by OPTIMIZE), and with it the
    trained model, the scores and the explanations of the same data."""
    from pyspark.sql import functions as F

    return F.xxhash64(df["_id"].cast("string"), F.lit(seed))


def _estimate_u(left, right, spec, model):
    """u from random pairs: a seeded sample of ``sqrt(em.random_pairs)`` records per side (on the
    driver: a few hundred rows), every pair of them compared."""
    from matching.compare import pair_levels
    from matching.scoring import estimate_u

    k = max(1, int(spec.em.random_pairs ** 0.5))
    ls = left.orderBy(_id_hash(left, spec.em.seed), left["_id"]).limit(k).toPandas()
    rs = right.orderBy(_id_hash(right, spec.em.seed + 1), right["_id"]).limit(k).toPandas()
    if not len(ls) or not len(rs):
        return model
    pairs = ls.add_prefix("l_").merge(rs.add_prefix("r_"), how="cross")
    return estimate_u(pair_levels(pairs, spec), spec, model)


def training_side(left):
    """``left`` (with :func:`link_spark`'s routing flags) as training routes it: a query is local when each pass
    sends it to at most one partition, delivered code or not.

    A delivered code makes a query non-local for the decisions (its forced pair is one more candidate,
    seen by the reduction or verified in its main partition), but training counts no forced pair (neither
    :func:`_linkage` without ``forced`` nor :func:`matching.partitioned.reduce_queries` without a model
    does): such a query's counted pairs are its main partition's, else its fallback partition's, exactly
    what its partition counts when it is local. Sent to the reduction, every pair of the third of a
    district's records that carry a code travelled as text to be counted there: the sampled training took
    37-48 s instead of 14 s (docs/speed.md), with the same counts."""
    from pyspark.sql import functions as F

    return left.withColumn("_local", (F.col("_fan0") <= 1) & (F.col("_fan1") <= 1))


def train_spark(left, right, spec, buckets: int, small_left: bool = False):
    """One model for the whole linkage: u from random pairs, then m (and lambda) by EM on the level-pattern
    counts of the compatible candidate pairs, counted in the partitions (only the counts reach the driver).
    Over ``em.max_pairs`` left records, the counts come from a seeded sample of that many records."""
    import numpy as np
    from pyspark.sql import functions as F

    from matching.scoring import initial_model, run_em

    model = initial_model(spec)
    n_left = left.count()
    if not spec.em.enabled or n_left == 0:
        return model
    model = _estimate_u(left.select(*[c for c in left.columns if not c.startswith("_") or c == "_id"]),
                        right, spec, model)
    if "_fan0" in left.columns:
        left = training_side(left)
    # a seeded share of the records, chosen by id (see _id_hash), about em.max_pairs of them
    share = int(round(1_000_000 * spec.em.max_pairs / n_left))
    sample = left if n_left <= spec.em.max_pairs else left.where(
        F.pmod(_id_hash(left, spec.em.seed), F.lit(1_000_000)) < share)
    n_used = sample.count() if sample is not left else n_left
    held: list = []
    try:
        counts = (_linkage(sample, right, spec, None, buckets, small_left, held=held).where(F.col("_kind") == "c")
                  .groupBy("_levels").agg(F.sum("_n").alias("n")).toPandas())
        # in a fixed order: EM's float sums then do not depend on the order the partitions answered in
        counts = counts.sort_values("_levels", kind="stable").reset_index(drop=True)
    finally:
        for df in held:
            df.unpersist()
    names = [c.name for c in spec.comparisons]
    levels = np.array([[int(x) for x in t.split(",")] for t in counts["_levels"]], dtype=np.int16).reshape(
        len(counts), len(names))
    pats = pd.DataFrame({n: levels[:, i] for i, n in enumerate(names)})
    pats["n"] = counts["n"].astype(np.int64).to_numpy()
    n_pairs = int(pats["n"].sum())
    model.lam = spec.em.prior or float(min(0.5, max(1e-6, n_used / max(1, n_pairs))))
    if n_pairs >= spec.em.min_pairs:
        model = run_em(pats, spec, model)
    return model


def link_spark(left, right, spec, model=None, forced=None, small_left: bool = False, buckets: int | None = None,
               top_k: int = 0):
    """The whole linkage on Spark, partitioned: the pandas engine runs inside each partition of co-grouped
    queries and right records (see :mod:`matching.partitioned` for the routing and why it gives the
    engine's answers record by record). ``left``/``right`` have ``_id`` (distinct) plus the spec's columns
    (and optionally ``address_norm``). Returns (decisions ``_id_l, right_id, weight, score, method,
    explanation``, model); without ``model`` one is trained first (:func:`train_spark`) and then used,
    fixed, in every partition.

    ``forced`` (optional ``_id_l, _id_r``): a pair that is one more candidate of its query and is accepted
    (``scanned_code_verified``) when compatible and at least ``decision.verify_min_weight`` bits (a
    delivered house code that agrees with the text). ``small_left`` (an incremental night's few records):
    only the right records sharing a partition key with a query are shuffled. ``buckets``: partitions per
    route (default ``spark.sql.shuffle.partitions``). ``top_k`` > 0: the decisions carry ``candidates``
    (array of ``struct<house_code, weight, why>``), the best ``top_k`` candidates of every unresolved record,
    compatible ones first, then by weight, each with why it was not chosen, computed in the partitions by
    :func:`matching.engine.top_candidates` (null for resolved records and for those without a candidate).
    The decisions are checkpointed locally (on the executors) and the intermediate caches released before
    this returns.
    """
    from pyspark.sql import functions as F

    from matching.partitioned import plan_routes

    buckets = buckets or int(left.sparkSession.conf.get("spark.sql.shuffle.partitions", "200"))
    wanted = list(dict.fromkeys(["_id", *spec.columns, "address_norm"]))
    lcols = [c for c in wanted if c in left.columns]
    rcols = [c for c in wanted if c in right.columns]
    main, fallback = plan_routes(spec.blocking, spec), plan_routes(spec.blocking_fallback, spec)
    lside = left.select(*lcols).withColumn("_fan0", _fan_out(main, spec)).withColumn("_fan1", _fan_out(fallback, spec))
    if forced is not None:   # a query's delivered code, when it has one (several: none, decided by the reduction)
        codes = forced.groupBy(F.col("_id_l").alias("_id")).agg(
            F.when(F.count(F.lit(1)) == 1, F.first("_id_r")).alias("_forced_id")).withColumn("_forced", F.lit(True))
        lside = lside.join(codes, "_id", "left")
    else:
        lside = lside.withColumn("_forced", F.lit(None).cast("boolean")).withColumn(
            "_forced_id", F.lit(None).cast("string"))
    lside = lside.select(*lcols, "_fan0", "_fan1", (
        (F.col("_fan0") <= 1) & (F.col("_fan1") <= 1) & F.col("_forced").isNull()).alias("_local"),
        (F.col("_fan1") >= 1).alias("_next"), "_forced_id").persist()
    rside = right.select(*rcols).persist()
    held: list = []
    try:
        if model is None:
            model = train_spark(lside, rside, spec, buckets, small_left)
        out = _linkage(lside, rside, spec, model, buckets, small_left, forced, top_k, held)
        cols = ["_id_l", "right_id", "weight", "score", "method", "explanation"]
        if top_k > 0:
            cols.append(F.from_json("_cands", CANDIDATES_TYPE).alias("candidates"))
        decisions = out.where(F.col("_kind") == "d").select(*cols).localCheckpoint(eager=True)
        return decisions, model
    finally:
        for df in (*held, lside, rside):
            df.unpersist()
