"""Splink 5 (DuckDB) set-ups for the fair benchmark, following Splink's own guidance.

Addresses (:func:`address_settings`, :func:`run_splink_addresses`), ``link_only`` registry <-> queries:

* **blocking**: gridlake's own rules, each as one equi-join on a capped key column (``tools.bench.fair.
  capped_keys``: the same ``max_block_size`` budget as gridlake's), analysed with
  ``splink.blocking_analysis.count_comparisons_from_blocking_rules`` (marginal and cumulative counts, exact:
  ``record_sample_proportion=1.0``) before predicting;
* **comparisons**: names with a null level, an exact level with **term-frequency adjustments**, a same-sound
  level (``<name>_py``), Jaro-Winkler >= 0.9 / >= 0.7 and else; the numbers exact / else;
* **training**: prior = 1 / registry size (every query has at most one house), u by random sampling, m by
  :data:`ADDRESS_EM_SESSIONS` -- several EM sessions, so that every comparison is left out of at least one
  session's blocking rule and its m is estimated (Splink's advice);
* **numbers hard, as in gridlake**: a candidate whose building, lane number, floor or room differs from the one
  the text names (or whose unit or lane differs when both name one), or that breaks gridlake's place rule
  (:data:`tools.bench.fair.PLACE_GROUPS`), is dropped after scoring; each query's best two remaining
  candidates give the raw decision (best, its weight, the gap), thresholded by ``tools.bench.fair.tune``.

Persons (:func:`person_settings`, :func:`run_splink_persons`): Splink's person-deduplication tutorial set-up
(``dedupe_only``; name comparison, date of birth comparison, exact matches with term-frequency adjustments,
prior estimated from deterministic rules at an assumed recall, u by random sampling, EM sessions on two
different rules, predict, connected components at a match-probability threshold).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tools.bench.fair import NAME_COLUMNS, PLACE_GROUPS, STRICT, WHEN_BOTH, address_features, capped_keys

log = logging.getLogger(__name__)

__all__ = ["ADDRESS_EM_SESSIONS", "ADDRESS_COMPARED", "address_settings", "run_splink_addresses", "duckdb_for_bench",
           "PERSON_BLOCKING", "PERSON_EM_SESSIONS", "person_settings", "run_splink_persons", "em_session_columns"]

#: compared columns, in the settings' order
ADDRESS_COMPARED = ("street", "community", "road", "door_no", "complex", "village", "lane", "lane_no", "building",
                    "unit", "floor", "room")
#: EM sessions (blocking columns): each comparison is outside at least one session's rule, so its m is estimated
ADDRESS_EM_SESSIONS = (("building", "unit", "room"),    # street, community, names, door_no, lane_no, floor
                       ("complex", "floor"),             # building, unit, room (complexes)
                       ("village", "lane_no"),           # lane, room, floor (villages)
                       ("road", "door_no", "floor"))     # building, room, complex (road addresses)
#: pairs per EM session (Splink 5's ``max_pairs`` sampling): at street scale the village and road sessions
#: block 16 M and 137 M pairs (measured with count_comparisons_from_blocking_rules)
EM_MAX_PAIRS = 2e6
DUCKDB_MEMORY_GB = 8


def em_session_columns(sessions: tuple[tuple[str, ...], ...], compared: tuple[str, ...]) -> dict[str, list[int]]:
    """For each compared column, the sessions (indices) that estimate its m (those not blocking on it)."""
    return {c: [i for i, s in enumerate(sessions) if c not in s] for c in compared}


def _name_comparison(col: str, jw: bool = True):
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    levels = [cll.NullLevel(col), cll.ExactMatchLevel(col, term_frequency_adjustments=True),
              cll.ExactMatchLevel(f"{col}_py").configure(label_for_charts="same sound")]
    if jw:
        levels += [cll.JaroWinklerLevel(col, 0.9), cll.JaroWinklerLevel(col, 0.7)]
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(levels, output_column_name=col)


def address_settings(n_registry: int, blocking_columns: list[str]):
    """Splink settings for registry <-> queries: one capped-key equi-join per gridlake blocking rule
    (``blocking_columns``), TF-adjusted name comparisons with a same-sound level, exact numbers."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comparisons = []
    for c in ADDRESS_COMPARED:
        if c == "street":
            comparisons.append(cl.ExactMatch(c).configure(term_frequency_adjustments=True))
        elif c == "community":
            comparisons.append(cl.JaroWinklerAtThresholds(c, [0.9, 0.7]).configure(term_frequency_adjustments=True))
        elif c in NAME_COLUMNS:
            comparisons.append(_name_comparison(c, jw=c != "lane"))
        else:
            comparisons.append(cl.ExactMatch(c))
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=1.0 / max(n_registry, 1),
        blocking_rules_to_generate_predictions=[block_on(b) for b in blocking_columns],
        comparisons=comparisons,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        max_iterations=50,
        em_convergence=1e-4,
    )


def duckdb_for_bench(memory_gb: int = DUCKDB_MEMORY_GB):
    """An in-memory DuckDB with an explicit memory limit and its own spill directory; returns (connection,
    spill directory, a function returning the peak spill size in MB seen so far by a sampling thread, stop)."""
    import duckdb

    con = duckdb.connect()
    spill = tempfile.mkdtemp(prefix="splink-duckdb-")
    con.execute(f"SET memory_limit='{memory_gb}GB'")
    con.execute(f"SET temp_directory='{spill}'")
    peak = {"mb": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            size = sum(f.stat().st_size for f in Path(spill).rglob("*") if f.is_file())
            peak["mb"] = max(peak["mb"], size / 2**20)
            stop.wait(0.5)

    threading.Thread(target=sample, daemon=True).start()

    def finish() -> float:
        stop.set()
        shutil.rmtree(spill, ignore_errors=True)
        return round(peak["mb"], 1)

    return con, finish


def _em(linker, cols: tuple[str, ...], max_pairs: float | None = None) -> dict[str, Any]:
    from splink import block_on

    t = time.monotonic()
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols), max_pairs=max_pairs)
        return {"rule": list(cols), "ok": True, "s": round(time.monotonic() - t, 2)}
    except Exception as exc:  # Splink rejects an m driven to 0; keep the previous estimates for that session
        log.warning("splink EM on %s failed: %s", cols, exc)
        return {"rule": list(cols), "ok": False, "error": str(exc)[:200], "s": round(time.monotonic() - t, 2)}


def _hard_filter_sql(pred: str) -> str:
    """Query/house orientation of the predictions, and gridlake's hard rules as a filter."""
    def q(c: str) -> str:
        return f"CASE WHEN source_dataset_l = 'queries' THEN {c}_l ELSE {c}_r END"

    def h(c: str) -> str:
        return f"CASE WHEN source_dataset_l = 'queries' THEN {c}_r ELSE {c}_l END"

    conds = [f"NOT ({q(c)} IS NOT NULL AND ({h(c)} IS NULL OR {q(c)} <> {h(c)}))" for c in STRICT]
    conds += [f"NOT ({q(c)} IS NOT NULL AND {h(c)} IS NOT NULL AND {q(c)} <> {h(c)})" for c in WHEN_BOTH]
    conds.append("gamma_lane <> 0")                       # lane differs (both named, no level agrees)
    named = " OR ".join("(" + " AND ".join(f"gamma_{c} <> -1" for c in g) + ")" for g in PLACE_GROUPS)
    agrees = " OR ".join("(" + " AND ".join(f"gamma_{c} > 0" for c in g) + ")" for g in PLACE_GROUPS)
    conds.append(f"NOT (({named}) AND NOT ({agrees}))")
    return f"""
        WITH p AS (
            SELECT {q('unique_id')} AS query_id, {h('unique_id')} AS house_code, match_weight
            FROM {pred} WHERE {' AND '.join(conds)}),
        r AS (SELECT *, row_number() OVER (PARTITION BY query_id ORDER BY match_weight DESC, house_code) AS rk
              FROM p QUALIFY rk <= 2)
        SELECT a.query_id AS id, a.house_code, a.match_weight AS weight,
               COALESCE(a.match_weight - b.match_weight, 'inf'::DOUBLE) AS gap
        FROM r a LEFT JOIN r b ON a.query_id = b.query_id AND b.rk = 2
        WHERE a.rk = 1"""


def run_splink_addresses(registry: pd.DataFrame, queries: pd.DataFrame, seed: int = 20141) -> pd.DataFrame:
    """Raw decisions (id, house_code, weight, gap) of the fair Splink set-up; timings and the blocking analysis
    in ``attrs`` (``analysis_s`` is outside ``engine_s``)."""
    from splink import DuckDBAPI, Linker
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    from matching.spec import load_spec

    logging.getLogger("splink").setLevel(logging.WARNING)
    t0 = time.monotonic()
    spec = load_spec("address_to_house")
    reg = address_features(registry, "house_code", "right", spec)
    qry = address_features(queries, "id", "left", spec)
    keys, key_stats = capped_keys(reg, qry, spec)
    t_feat = time.monotonic()
    con, finish = duckdb_for_bench()
    db = DuckDBAPI(con)
    sdfs = [db.register(reg, dataset_display_name="registry"), db.register(qry, dataset_display_name="queries")]
    ta = time.monotonic()
    from splink import block_on

    counts = count_comparisons_from_blocking_rules(sdfs, blocking_rules=[block_on(k) for k in keys],
                                                   link_type="link_only", record_sample_proportion=1.0)
    analysis = [{"key": k, **key_stats[k], "marginal": int(c["marginal_comparison_count"]),
                 "cumulative": int(c["cumulative_comparison_count"])} for k, c in zip(keys, counts, strict=True)]
    analysis_s = time.monotonic() - ta
    t1 = time.monotonic()
    linker = Linker(sdfs, address_settings(len(reg), keys), log_level=logging.WARNING)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=seed)
    t_u = time.monotonic()
    sessions = [_em(linker, s, EM_MAX_PAIRS) for s in ADDRESS_EM_SESSIONS]
    t_em = time.monotonic()
    pred = linker.inference.predict()
    raw = con.execute(_hard_filter_sql(pred.physical_name)).df()
    t_pred = time.monotonic()
    spilled = finish()
    out = qry[["unique_id"]].rename(columns={"unique_id": "id"}).merge(raw, on="id", how="left")
    out["house_code"] = out["house_code"].astype(object).where(out["house_code"].notna(), None)
    out.attrs.update({
        "engine_s": round((t_feat - t0) + (t_pred - t1), 2), "features_s": round(t_feat - t0, 2),
        "u_s": round(t_u - t1, 2), "em_s": round(t_em - t_u, 2), "predict_decide_s": round(t_pred - t_em, 2),
        "analysis_s": round(analysis_s, 2), "blocking_analysis": analysis,
        "comparisons_total": analysis[-1]["cumulative"] if analysis else 0, "em_sessions": sessions,
        "duckdb_memory_limit_gb": DUCKDB_MEMORY_GB, "duckdb_peak_spill_mb": spilled,
        "m_estimated_in_sessions": em_session_columns(
            tuple(tuple(s["rule"]) for s in sessions if s["ok"]), ADDRESS_COMPARED)})
    return out


# --- persons ---------------------------------------------------------------------------------------------

#: the person spec's blocking rules, as Splink blocking rules (SQL expressions for the ID slices)
PERSON_BLOCKING = (("id_valid",), ("phone",), ("name_sound", "house_code"), ("name_sound", "birth"),
                   ("substr(id_text, 1, 14)",), ("substr(id_text, 11, 8)",))
#: two EM sessions on different rules, as in the tutorial (first name + surname, then dob)
PERSON_EM_SESSIONS = (("name_sound",), ("birth",))
PERSON_THRESHOLD = 0.95          # the tutorial's clustering threshold (match probability)


def person_settings():
    """Splink's person-deduplication tutorial set-up on the mentions' columns."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    name = cl.CustomComparison([cll.NullLevel("name"), cll.ExactMatchLevel("name", term_frequency_adjustments=True),
                                cll.ExactMatchLevel("name_sound").configure(label_for_charts="same sound"),
                                cll.JaroWinklerLevel("name", 0.88), cll.ElseLevel()], output_column_name="name")
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_key",
        blocking_rules_to_generate_predictions=[block_on(*r) for r in PERSON_BLOCKING],
        comparisons=[
            name,
            cl.LevenshteinAtThresholds("id_text", [1, 2]),
            cl.DateOfBirthComparison("birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("sex"),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.ExactMatch("house_code").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=True,
    )


def run_splink_persons(mentions: pd.DataFrame, seed: int = 20141) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs: record_key_l, record_key_r, match_probability; clusters at :data:`PERSON_THRESHOLD`:
    record_key, cluster_id) of the tutorial set-up on prepared mentions (``matching.person_link.
    prepare_mentions``). Timings in ``clusters.attrs``."""
    from splink import DuckDBAPI, Linker, block_on

    logging.getLogger("splink").setLevel(logging.WARNING)
    t0 = time.monotonic()
    con, finish = duckdb_for_bench()
    db = DuckDBAPI(con)
    df = mentions[["record_key", "id_valid", "id_text", "birth", "sex", "name", "name_sound", "phone",
                   "house_code"]].copy()
    linker = Linker(db.register(df, dataset_display_name="mentions"), person_settings(), log_level=logging.WARNING)
    # the tutorial: prior from deterministic rules at an assumed recall, u by sampling, EM on two rules
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_valid"), block_on("name", "phone")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
    sessions = [_em(linker, s, EM_MAX_PAIRS) for s in PERSON_EM_SESSIONS]
    pred = linker.inference.predict(threshold_match_weight=-5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, PERSON_THRESHOLD)
    pairs = con.execute(f"SELECT record_key_l, record_key_r, match_probability FROM {pred.physical_name}").df()
    cl_df = con.execute(f"SELECT record_key, cluster_id FROM {clusters.physical_name}").df()
    t1 = time.monotonic()
    finish()
    cl_df.attrs.update({"engine_s": round(t1 - t0, 2), "em_sessions": sessions, "pairs": len(pairs),
                        "threshold": PERSON_THRESHOLD})
    return pairs, cl_df
