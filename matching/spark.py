"""Thin Spark adapter over the engine-agnostic core.

Column helpers (used by the silver helper for every table with an address):

* :func:`address_columns` -> ``struct<address_norm: string, addr: ADDRESS_STRUCT>``
* :func:`normalized_address` -> string, :func:`parsed_address` -> ``ADDRESS_STRUCT``

All three are vectorised pandas UDFs calling :mod:`matching.address`.
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
    from matching.address import parse

    rows = [parse(t) if isinstance(t, str) else dict.fromkeys(ADDRESS_COMPONENTS) for t in texts]
    return pd.DataFrame(rows, columns=list(ADDRESS_COMPONENTS), index=texts.index)


@pandas_udf(StringType())
def _normalize_udf(texts: pd.Series) -> pd.Series:
    from matching.address import normalize

    return texts.map(lambda t: normalize(t) if isinstance(t, str) else None)


@pandas_udf(ADDRESS_STRUCT)
def _parse_udf(texts: pd.Series) -> pd.DataFrame:
    return _parse_series(texts)


def normalized_address(col: Column) -> Column:
    """The normalised address text of ``col`` (string or null)."""
    return _normalize_udf(col)


def parsed_address(col: Column) -> Column:
    """The parsed components of ``col`` as :data:`schemas.address.ADDRESS_STRUCT`."""
    return _parse_udf(col)


def address_columns(col: Column) -> Column:
    """``struct<address_norm, addr>`` for the raw address ``col`` in one vectorised pass.

    Usage: ``df.withColumn("_a", address_columns(F.col("address_raw")))
    .select("*", "_a.address_norm", "_a.addr").drop("_a")``.
    """
    from pyspark.sql import functions as F

    return F.struct(_normalize_udf(col).alias("address_norm"), _parse_udf(col).alias("addr"))


# --- linkage at scale -------------------------------------------------------------------------

def _key_col(key: str):
    from pyspark.sql import functions as F

    from matching.spec import parse_key

    base, start, stop = parse_key(key)
    c = F.col(base)
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


def _levels_schema(spec):
    from pyspark.sql.types import BooleanType, ShortType

    fields = [StructField("_id_l", StringType()), StructField("_id_r", StringType())]
    fields += [StructField(c.name, ShortType()) for c in spec.comparisons]
    fields += [StructField("_compatible", BooleanType()), StructField("_violations", StringType()),
               StructField("_same_text", BooleanType())]
    return StructType(fields)


def compare_spark(pairs, spec):
    """Comparison levels of materialised pairs (``l_*``/``r_*`` columns) with a vectorised mapInPandas."""
    from matching.compare import pair_levels

    cols = list(_levels_schema(spec).fieldNames())

    def run(batches):
        for pdf in batches:
            yield pair_levels(pdf, spec)[cols]

    return pairs.mapInPandas(run, _levels_schema(spec))


def _materialise(ids, left, right):
    from pyspark.sql import functions as F

    lp = left.select(*[F.col(c).alias(f"l_{c}") for c in left.columns])
    rp = right.select(*[F.col(c).alias(f"r_{c}") for c in right.columns])
    return ids.join(lp, ids["_id_l"] == lp["l__id"]).join(rp, ids["_id_r"] == rp["r__id"]).drop("_id_l", "_id_r")


def train_spark(left, right, levels, spec):
    """u from random pairs and m by EM on blocked-pair pattern counts (only counts reach the driver)."""
    from pyspark.sql import functions as F

    from matching.scoring import estimate_u, initial_model, run_em

    model = initial_model(spec)
    names = [c.name for c in spec.comparisons]
    n_left = left.count()
    if not spec.em.enabled or n_left == 0:
        return model
    k = max(1, int(spec.em.random_pairs ** 0.5))
    ls = left.orderBy(F.rand(spec.em.seed)).limit(k)
    rs = right.orderBy(F.rand(spec.em.seed + 1)).limit(k)
    rnd = compare_spark(_materialise(ls.select(F.col("_id").alias("_id_l")).crossJoin(
        rs.select(F.col("_id").alias("_id_r"))), ls, rs), spec)
    rnd_counts = rnd.groupBy(*names).count().toPandas()
    expanded = rnd_counts.loc[rnd_counts.index.repeat(rnd_counts["count"])][names]
    model = estimate_u(expanded, spec, model)
    pats = levels.where("_compatible").groupBy(*names).count().toPandas().rename(columns={"count": "n"})
    n_pairs = int(pats["n"].sum()) if len(pats) else 0
    model.lam = spec.em.prior or float(min(0.5, max(1e-6, n_left / max(1, n_pairs))))
    if n_pairs >= spec.em.min_pairs:
        model = run_em(pats, spec, model)
    return model


def score_spark(levels, spec, model):
    """Add ``weight`` (sum of level weights) and ``explanation`` (levels, weight) as Spark expressions."""
    from pyspark.sql import functions as F

    from matching.compare import level_names

    weights = model.weights(spec)
    labels = level_names(spec)
    wsum = None
    parts = []
    for c in spec.comparisons:
        w = F.element_at(F.array(*[F.lit(float(x)) for x in weights[c.name]]), F.col(c.name).cast("int") + 1)
        wsum = w if wsum is None else wsum + w
        lab = F.element_at(F.array(*[F.lit(x) for x in labels[c.name]]), F.col(c.name).cast("int") + 1)
        parts.append(F.when(lab != "null", F.concat(F.lit(f"{c.name}="), lab)))
    return (levels.withColumn("weight", F.round(wsum, 4))
            .withColumn("_expl", F.concat_ws(";", *parts, F.concat(F.lit("weight="), F.format_number("weight", 2)))))


def decide_spark(scored, left_ids, spec, lam: float, forced=None, vague=None):
    """One decision per left id: best compatible candidate if strong and clear, else unresolved.

    ``forced`` (optional ``_id_l, _id_r``) are pairs accepted when compatible and above
    ``decision.verify_min_weight`` (a scanned house code that agrees with the text).
    Returns ``_id_l, right_id, weight, score, method, explanation``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    d = spec.decision
    prior = float(__import__("math").log2(lam / (1 - lam)))
    comp = scored.where("_compatible")
    level_sum = sum((F.col(c.name).cast("long") for c in spec.comparisons), F.lit(0))
    w = Window.partitionBy("_id_l").orderBy(F.desc("weight"), level_sum.asc(), F.asc("_id_r"))
    exact_names = list(d.exact_level_names) + ["null"]
    from matching.compare import level_names

    labels = level_names(spec)
    # Pareto dominance (as the pandas decide): a candidate the best one is at least as good as on every
    # comparison's ordered level (null comparable only with null) and strictly better on one is not
    # ambiguous with it; _next is the best candidate the best one does not dominate
    geq, strict = F.lit(True), F.lit(False)
    for c in spec.comparisons:
        null = labels[c.name].index("null") if "null" in labels[c.name] else -1
        lb, lv = F.first(c.name).over(w), F.col(c.name)
        both = (lv != null) & (lb != null)
        geq = geq & ((lb == lv) | (both & (lb < lv)))
        strict = strict | (both & (lb < lv))
    whole = w.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    ranked = comp.withColumn("_rn", F.row_number().over(w)).withColumn("_dom", geq & strict) \
        .withColumn("_raw_next_id", F.lead("_id_r").over(w)).withColumn("_raw_dom", F.lead("_dom").over(w)) \
        .withColumn("_eff", F.min(F.when((F.col("_rn") > 1) & ~F.col("_dom"),
                                         F.struct(F.col("_rn"), F.col("weight"), F.col("_id_r")))).over(whole)) \
        .where("_rn = 1") \
        .withColumn("_next", F.col("_eff.weight")).withColumn("_next_id", F.col("_eff._id_r"))
    all_exact = None
    for c in spec.comparisons:
        ok_idx = [i for i, lab in enumerate(labels[c.name]) if lab in exact_names]
        cond = F.col(c.name).isin(ok_idx)
        all_exact = cond if all_exact is None else all_exact & cond
    gap = F.col("weight") - F.col("_next")
    gap_txt = F.concat(F.when(F.col("_next").isNull(), F.lit("inf")).otherwise(F.format_number(gap, 2)),
                       F.when(F.col("_raw_dom"), F.concat(F.lit(";dominates="), "_raw_next_id")).otherwise(F.lit("")))
    prob = F.round(F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -(F.col("weight") + F.lit(prior)))), 6)
    strong = F.col("weight") >= d.min_weight
    clear = F.col("_next").isNull() | (gap >= d.min_gap)
    best = ranked.select(
        "_id_l",
        F.when(strong & clear, F.col("_id_r")).alias("right_id"),
        F.col("weight"), prob.alias("score"),
        F.when(~strong, F.lit("unresolved")).when(~clear, F.lit("unresolved"))
        .when(all_exact | F.col("_same_text"), F.lit("exact")).otherwise(F.lit("fuzzy")).alias("method"),
        F.when(~strong, F.concat(F.lit("unresolved=low_weight;"), "_expl", F.lit(";gap="), gap_txt))
        .when(~clear, F.concat(F.lit("unresolved=ambiguous;"), "_expl", F.lit(";gap="), gap_txt,
                               F.lit(";runner_up="), "_next_id"))
        .otherwise(F.concat("_expl", F.lit(";gap="), gap_txt, F.lit(";score="), F.format_number(prob, 4)))
        .alias("explanation"),
    )
    viol = scored.groupBy("_id_l").agg(
        F.count(F.lit(1)).alias("_n"),
        F.concat_ws(",", F.array_sort(F.array_distinct(F.flatten(F.collect_list(F.split("_violations", ";"))))))
        .alias("_v"))
    out = left_ids.select(F.col("_id").alias("_id_l")).distinct().join(best, "_id_l", "left").join(viol, "_id_l", "left")
    out = out.select(
        "_id_l", "right_id", "weight",
        F.when(F.col("right_id").isNotNull() | F.col("method").isNotNull(), F.col("score")).alias("score"),
        F.coalesce("method", F.lit("unresolved")).alias("method"),
        F.coalesce("explanation", F.when(F.col("_n").isNull(), F.lit("unresolved=no_candidate"))
                   .otherwise(F.concat(F.lit("unresolved=not_in_registry:"), F.regexp_replace("_v", "^,", ""),
                                       F.lit(";candidates="), F.col("_n").cast("string")))).alias("explanation"),
    )
    if vague is not None:   # rules skipped as too vague: reported on unresolved records
        out = out.join(vague, "_id_l", "left").select(
            "_id_l", "right_id", "weight", "score", "method",
            F.when(F.col("_too_vague").isNull() | F.col("right_id").isNotNull(), F.col("explanation"))
            .otherwise(F.concat(F.regexp_replace("explanation", "^unresolved=no_candidate$", "unresolved=too_vague"),
                                F.lit(";too_vague="), F.col("_too_vague"))).alias("explanation"))
    if forced is not None:
        f = (scored.join(forced, ["_id_l", "_id_r"]).where(F.col("_compatible") & (F.col("weight") >= d.verify_min_weight))
             .select("_id_l", F.col("_id_r").alias("_f_id"), F.col("weight").alias("_f_w"),
                     F.concat(F.lit("scanned_code_verified;"), "_expl").alias("_f_expl")))
        out = out.join(f, "_id_l", "left").select(
            "_id_l",
            F.coalesce("_f_id", "right_id").alias("right_id"),
            F.coalesce("_f_w", "weight").alias("weight"),
            F.when(F.col("_f_id").isNotNull(),
                   F.round(F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -(F.col("_f_w") + F.lit(prior)))), 6))
            .otherwise(F.col("score")).alias("score"),
            F.when(F.col("_f_id").isNotNull(), F.lit("scanned_code_verified")).otherwise(F.col("method")).alias("method"),
            F.coalesce("_f_expl", "explanation").alias("explanation"))
    return out


def top_candidates(scored, spec, k: int):
    """The ``k`` best candidates of every left id: ``_id_l, candidates`` (array of
    ``struct<house_code, weight, why>``), compatible ones first, each by weight.

    ``why`` says why the candidate was not chosen: ``conflict:<components>`` (a must-agree component
    differs, e.g. a room number), ``low_weight`` (below ``decision.min_weight``), ``ambiguous``
    (within ``decision.min_gap`` of another compatible candidate) or ``outranked``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    d = spec.decision
    by_id = Window.partitionBy("_id_l")
    comp = F.col("_compatible")
    ranked = (scored.withColumn("_best", F.max(F.when(comp, F.col("weight"))).over(by_id))
              .withColumn("_rk", F.row_number().over(by_id.orderBy(F.desc("_compatible"), F.desc("weight"),
                                                                   F.asc("_id_r")))))
    second = ranked.where(comp).withColumn("_crk", F.row_number().over(
        by_id.orderBy(F.desc("weight"), F.asc("_id_r")))).where("_crk = 2").select("_id_l", F.col("weight").alias("_second"))
    top = ranked.where(F.col("_rk") <= k).join(second, "_id_l", "left")
    close = F.when(F.col("weight") >= F.col("_best"), F.col("_best") - F.col("_second")) \
        .otherwise(F.col("_best") - F.col("weight"))
    why = (F.when(~comp, F.concat(F.lit("conflict:"), F.coalesce(F.regexp_replace("_violations", "[;|]", ","),
                                                                 F.lit("registry"))))
           .when(F.col("weight") < d.min_weight, F.lit("low_weight"))
           .when(F.coalesce(close, F.lit(float("inf"))) < d.min_gap, F.lit("ambiguous"))
           .otherwise(F.lit("outranked")))
    return top.groupBy("_id_l").agg(F.transform(
        F.array_sort(F.collect_list(F.struct(F.col("_rk").alias("rk"), F.col("_id_r").alias("house_code"),
                                             F.round("weight", 4).cast("double").alias("weight"), why.alias("why")))),
        lambda c: F.struct(c["house_code"].alias("house_code"), c["weight"].alias("weight"),
                           c["why"].alias("why"))).alias("candidates"))


def link_spark(left, right, spec, model=None, forced=None, small_left: bool = False, top_k: int = 0):
    """The whole linkage on Spark. ``left``/``right`` have ``_id`` plus the spec's columns (and optionally
    ``address_norm``). Returns (decisions DataFrame, model). Only EM pattern counts reach the driver.

    The decisions are computed once and checkpointed locally (on the executors, not the driver), so the
    intermediate caches - transformed sides, candidate pairs, comparison levels - are released before
    this returns and a long-lived session does not accumulate them. ``small_left``: see
    :func:`block_spark_info`. ``top_k`` > 0: the decisions carry ``candidates``, the best ``top_k``
    candidates of every unresolved left record (:func:`top_candidates`; null for resolved ones).
    """
    # Persist the transformed sides and the candidate pairs: every blocking rule, the
    # materialisation and the decision read them again, and their pandas UDFs are costly.
    left = _transform_columns(left, spec).persist()
    right = _transform_columns(right, spec).persist()
    cached = [left, right]
    try:
        ids, vague = block_spark_info(left, right, spec, small_left=small_left)
        if forced is not None:
            ids = ids.unionByName(forced.select("_id_l", "_id_r")).distinct()
        ids, vague = ids.persist(), vague.persist()
        cached += [ids, vague]
        levels = compare_spark(_materialise(ids, left, right), spec).persist()
        cached.append(levels)
        if model is None:
            model = train_spark(left, right, levels, spec)
        scored = score_spark(levels, spec, model)
        decisions = decide_spark(scored, left, spec, model.lam, forced, vague)
        if top_k > 0:
            from pyspark.sql import functions as F

            cands = top_candidates(scored, spec, top_k)
            decisions = decisions.join(cands, "_id_l", "left").withColumn(
                "candidates", F.when(F.col("right_id").isNull(), F.col("candidates")))
        decisions = decisions.localCheckpoint(eager=True)
        return decisions, model
    finally:
        for df in cached:
            df.unpersist()
