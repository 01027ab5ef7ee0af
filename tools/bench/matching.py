"""``gridlake bench matching``: gridlake's address resolution against Splink 5 (DuckDB) on generated districts.

For each scale and noise model a district is generated (``gridlake generate --scale S --days 1 --noise N
--seed SEED``; ``gridlake bench matching --noise default,second --seed 20141``), then one resolution task is
built from the landing files and the generator's truth:

* registry: the housing snapshot (house code + standard address), demolished houses excluded;
* queries: the address text of declarations, rentals and the four enforcement sources, one per delivered row,
  without the rows the truth marks as quarantined (malformed, bad ID checksum, duplicate deliveries).

Delivered (scanned) house codes are ignored: both engines resolve from the text alone. Each engine runs as its
own subprocess (``python -m tools.bench.matching run-gridlake|run-gridlake-spark|run-splink --registry R --input Q
--output O``) measured by :func:`tools.bench.kit.measure`, so wall time and peak RSS are per engine and include
parsing. Answers are scored against the truth: precision = correct / answered, recall = correct / resolvable
(records whose true house code is not empty), F1, overall and by source. Every result names its scale, noise
model and seed (read back from the generator's truth manifest); the report names the commit and the machine.

Splink gets the same features as gridlake: both sides are split by :func:`matching.address.parse` first;
link_only between registry and queries; blocking on the room plus building / lane number / door number /
complex / village+lane; Jaro-Winkler levels on road, complex, village, lane and community; exact levels on the
numbers; u by random sampling, m by EM; each query takes its best candidate at probability >= 0.9 unless the
runner-up is within ``SPLINK_MARGIN_BITS`` of match weight (ambiguous: abstain).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tools.bench.kit import run_info

log = logging.getLogger(__name__)

__all__ = ["QUERY_SOURCES", "TARGETS", "NOISE_MODELS", "read_delivered_rows", "build_task", "write_task",
           "score_answers", "run_info",
           "parsed_frame", "number_conflicts", "run_gridlake", "run_gridlake_spark", "run_splink", "splink_settings",
           "splink_decide", "bench_matching", "main"]

QUERY_SOURCES = {"declarations": "declaration_id", "rentals": "rental_id", "police_incidents": "incident_id",
                 "mediation_cases": "case_id", "safety_inspections": "inspection_id", "family_planning": "record_id"}
TARGETS = {"gridlake_precision": 0.995, "gridlake_recall": 0.97, "throughput_ratio_min": 1.0,
           "district_peak_rss_gib": 24.0}
SPLINK_THRESHOLD = 0.9       # best candidate's match probability must reach this
SPLINK_MARGIN_BITS = 1.0     # abstain when the runner-up's match weight is within this many bits
# the Spark path starts a JVM and is slow on a small shared machine: opt-in, e.g. GRIDLAKE_BENCH_SPARK_SCALES=community
SPARK_SCALES = tuple(s for s in os.environ.get("GRIDLAKE_BENCH_SPARK_SCALES", "").split(",") if s)
ENGINE_TIMEOUT_S = int(os.environ.get("GRIDLAKE_BENCH_TIMEOUT_S", "3600"))  # per engine run; then killed
# optional address-space cap per engine (MB, via prlimit; not for the JVM engine): protects a shared machine
ENGINE_MAX_MEM_MB = int(os.environ.get("GRIDLAKE_BENCH_MAX_MEM_MB", "0"))
DEMOLISHED = ("已拆除", "demolished")
NOISE_MODELS = ("default", "second")
DEFAULT_SEED = 20141


# --- the task ----------------------------------------------------------------------------------------------

def read_delivered_rows(data: Path, source: str) -> pd.DataFrame:
    """Every data row of ``source``'s landing files as strings (canonical column names) with ``file``
    (relative to ``data``, as in the truth) and 1-based ``row_number``. Rows with too few or too many
    cells keep their numbering (missing cells are empty)."""
    from gridlake.sources import get_source

    src = get_source(source)
    frames = []
    for f in sorted((data / "landing" / source).glob(f"*/{src.file_glob}")):
        if src.format == "xlsx":
            from openpyxl import load_workbook

            wb = load_workbook(f, read_only=True)
            rows = [["" if v is None else str(v) for v in r] for r in wb.active.iter_rows(values_only=True)]
            wb.close()
        else:
            with f.open(encoding=src.encoding, newline="") as fh:
                rows = list(csv.reader(fh))
        if not rows:
            continue
        header = [src.header_to_canonical.get(h.strip(), h.strip()) for h in rows[0]]
        body = [(r + [""] * len(header))[:len(header)] for r in rows[1:]]
        df = pd.DataFrame(body, columns=header, dtype=object)
        df["file"] = f.relative_to(data).as_posix()
        df["row_number"] = range(1, len(df) + 1)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["file", "row_number"])


def build_task(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(registry[house_code, address], queries[id, source, record_id, address], truth[id, source, true_code])
    from a generated district under ``data`` (landing/ and truth/records.parquet)."""
    housing = read_delivered_rows(data, "housing")
    latest = housing.sort_values("file", kind="stable").drop_duplicates("house_code", keep="last")
    if "status" in latest:
        latest = latest[~latest["status"].isin(DEMOLISHED)]
    registry = latest[["house_code", "address"]].reset_index(drop=True)
    truth = pd.read_parquet(data / "truth" / "records.parquet")
    truth = truth[truth["source"].isin(list(QUERY_SOURCES)) & ~truth["quarantine"].fillna(False).astype(bool)]
    frames = []
    for source, id_col in QUERY_SOURCES.items():
        rows = read_delivered_rows(data, source)
        if rows.empty:
            continue
        t = truth[truth["source"] == source][["file", "row_number", "record_id", "house_code"]]
        r = rows[["file", "row_number", id_col, "address"]].rename(columns={id_col: "_landing_id"})
        m = r.merge(t, on=["file", "row_number"], how="inner")
        if (m["_landing_id"].str.strip() != m["record_id"]).any():
            log.warning("%s: %d rows whose delivered id differs from the truth's record id", source,
                        int((m["_landing_id"].str.strip() != m["record_id"]).sum()))
        frames.append(pd.DataFrame({"source": source, "record_id": m["record_id"].astype(str),
                                    "address": m["address"], "true_code": m["house_code"].fillna("").astype(str)}))
    task = pd.concat(frames, ignore_index=True)
    task["id"] = task["source"] + "|" + task["record_id"]
    task = task.drop_duplicates("id").reset_index(drop=True)
    queries = task[["id", "source", "record_id", "address"]]
    return registry, queries, task[["id", "source", "true_code"]]


def write_task(data: Path, out: Path) -> dict[str, Any]:
    """Build the task of ``data`` and write registry/queries/truth Parquet files under ``out``."""
    registry, queries, truth = build_task(data)
    out.mkdir(parents=True, exist_ok=True)
    registry.to_parquet(out / "registry.parquet", index=False)
    queries.to_parquet(out / "queries.parquet", index=False)
    truth.to_parquet(out / "truth.parquet", index=False)
    return {"registry": len(registry), "queries": len(queries),
            "resolvable": int((truth["true_code"] != "").sum()),
            "queries_by_source": queries["source"].value_counts().to_dict()}


# --- scoring -----------------------------------------------------------------------------------------------

def _prf(tp: int, fp: int, fn: int, n: int) -> dict[str, Any]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 5), "recall": round(r, 5), "f1": round(f1, 5), "tp": tp, "fp": fp, "fn": fn,
            "records": n}


def score_answers(answers: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """Precision / recall / F1 of ``answers`` (id, house_code; None or "" = abstained) against ``truth``
    (id, source, true_code; "" = deliberately unresolvable). A truth id missing from the answers counts
    as abstained. Returns ``{"overall": {...}, "by_source": {source: {...}}}``."""
    pred = answers[["id", "house_code"]].drop_duplicates("id").rename(columns={"house_code": "pred"})
    df = truth.merge(pred, on="id", how="left")
    df["pred"] = df["pred"].fillna("").astype(str)
    df["true_code"] = df["true_code"].fillna("").astype(str)
    answered = df["pred"] != ""
    df["tp"] = answered & (df["pred"] == df["true_code"])
    df["fp"] = answered & (df["pred"] != df["true_code"])
    df["fn"] = (df["true_code"] != "") & ~df["tp"]

    def agg(g: pd.DataFrame) -> dict[str, Any]:
        return _prf(int(g["tp"].sum()), int(g["fp"].sum()), int(g["fn"].sum()), len(g))

    return {"overall": agg(df), "by_source": {s: agg(g) for s, g in df.groupby("source")}}


def number_conflicts(answers: pd.DataFrame, task: Path) -> dict[str, int]:
    """Answers whose house has a different building, unit, floor or room than the query text names (a
    component the text leaves out never conflicts): the target is none. Counts per component and in all."""
    from matching.engine import parsed_addresses

    q = pd.read_parquet(task / "queries.parquet", columns=["id", "address"])
    r = pd.read_parquet(task / "registry.parquet", columns=["house_code", "address"])
    a = answers[["id", "house_code"]].dropna().drop_duplicates("id")
    a = a[a["house_code"].astype(str) != ""].merge(q, on="id").merge(r, on="house_code", suffixes=("_q", "_r"))
    pq, pr = parsed_addresses(a["address_q"]), parsed_addresses(a["address_r"])
    out, any_bad = {}, pd.Series(False, index=pq.index)
    for comp in ("building", "unit", "floor", "room"):
        bad = pq[comp].notna() & (pq[comp] != pr[comp])
        out[comp] = int(bad.sum())
        any_bad |= bad
    out["answers_checked"], out["any"] = len(a), int(any_bad.sum())
    return out


# --- engines (each runs in its own process) ----------------------------------------------------------------

def parsed_frame(df: pd.DataFrame, id_col: str, text_col: str = "address") -> pd.DataFrame:
    """``unique_id`` plus every address component of :func:`matching.address.parse` (None when absent)."""
    from matching.engine import parsed_addresses
    from schemas.address import ADDRESS_COMPONENTS

    out = parsed_addresses(df[text_col])[list(ADDRESS_COMPONENTS)]   # parsed once per distinct text, as gridlake
    out = out.astype(object).where(out.notna() & (out != ""), None)
    out.insert(0, "unique_id", df[id_col].astype(str).to_numpy())
    return out


def run_gridlake(registry: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    """gridlake's pandas engine (``matching.resolve``): id, house_code (None = abstained), score."""
    from matching.resolve import resolve_addresses

    out = resolve_addresses(registry[["house_code", "address"]], queries[["id", "address"]])
    return out[["id", "house_code", "score"]]


def run_gridlake_spark(registry: pd.DataFrame, queries: pd.DataFrame, data_root: Path) -> pd.DataFrame:
    """gridlake's Spark path (``matching.spark.link_spark``) on a local session: id, house_code, score."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    from gridlake.config import load_settings
    from gridlake.spark import get_spark
    from matching.spark import address_columns, link_spark
    from matching.spec import load_spec
    from schemas.address import ADDRESS_COMPONENTS

    spark = get_spark(load_settings(None, data_root), "gridlake-bench-matching")
    schema = StructType([StructField("_id", StringType(), False), StructField("address", StringType(), True)])

    def side(pdf: pd.DataFrame, id_col: str):
        df = spark.createDataFrame(pdf[[id_col, "address"]].rename(columns={id_col: "_id"}), schema)
        df = df.withColumn("_a", address_columns(F.col("address")))
        return df.select("_id", "_a.address_norm", *[F.col(f"_a.addr.{c}").alias(c) for c in ADDRESS_COMPONENTS])

    decisions, _ = link_spark(side(queries, "id"), side(registry, "house_code"), load_spec("address_to_house"))
    out = decisions.select(F.col("_id_l").alias("id"), F.col("right_id").alias("house_code"), "score").toPandas()
    spark.stop()
    return out


def _jw(col: str):
    import splink.comparison_library as cl

    return cl.JaroWinklerAtThresholds(col, [0.9, 0.7]).configure(m_probabilities=[0.85, 0.07, 0.05, 0.03])


def _em(linker, rule) -> bool:
    """One EM session; False when Splink 5 rejects an m that EM drove to 0 (a level never seen among the
    matches of this session): the starting/previous m are kept for that session."""
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, fix_probability_two_random_records_match=True)
        return True
    except ValueError as exc:
        log.warning("splink EM on %s failed (%s): keeping the previous m", rule, exc)
        return False


def splink_settings(n_registry: int):
    """The Splink 5 settings for registry <-> queries on parsed address components."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=1.0 / max(n_registry, 1),
        blocking_rules_to_generate_predictions=[
            block_on("building", "room"),
            block_on("lane_no", "room"),
            block_on("road", "door_no", "room"),
            block_on("complex", "room"),
            block_on("village", "lane", "room"),
        ],
        comparisons=[  # starting m (kept where EM cannot estimate a level): agree ~ 0.9-0.95
            cl.ExactMatch("street").configure(m_probabilities=[0.95, 0.05]),
            _jw("community"), _jw("road"),
            cl.ExactMatch("door_no").configure(m_probabilities=[0.9, 0.1]),
            _jw("complex"), _jw("village"), _jw("lane"),
            *[cl.ExactMatch(c).configure(m_probabilities=[0.95, 0.05])
              for c in ("lane_no", "building", "unit", "floor", "room")],
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        max_iterations=25,
    )


def splink_decide(pairs: pd.DataFrame, threshold: float = SPLINK_THRESHOLD,
                  margin_bits: float = SPLINK_MARGIN_BITS) -> pd.DataFrame:
    """Per query (``query_id``): the best ``house_code`` by match weight if its probability reaches
    ``threshold`` and the runner-up trails by at least ``margin_bits``; else abstain (house_code None).
    ``pairs`` has query_id, house_code, match_weight, match_probability."""
    if pairs.empty:
        return pd.DataFrame(columns=["id", "house_code", "score"])
    p = pairs.sort_values(["query_id", "match_weight", "house_code"], ascending=[True, False, True])
    p["rank"] = p.groupby("query_id").cumcount()
    best = p[p["rank"] == 0].set_index("query_id")
    second = p[p["rank"] == 1].set_index("query_id")["match_weight"]
    gap = best["match_weight"] - second.reindex(best.index).fillna(-math.inf)
    ok = (best["match_probability"] >= threshold) & (gap >= margin_bits)
    return pd.DataFrame({"id": best.index, "house_code": best["house_code"].where(ok, None).to_numpy(),
                         "score": best["match_probability"].to_numpy()})


def _duckdb_connection():
    """An in-memory DuckDB for Splink. Under an address-space cap (``GRIDLAKE_BENCH_MAX_MEM_MB``) its memory
    limit is set to half the cap and it spills to a temporary directory, as DuckDB's own out-of-memory advice
    says: its default limit (80 % of RAM) does not see the cap and fails on a district's blocked pairs."""
    import atexit
    import tempfile

    import duckdb

    con = duckdb.connect()
    if ENGINE_MAX_MEM_MB:
        spill = tempfile.mkdtemp(prefix="splink-duckdb-")
        atexit.register(shutil.rmtree, spill, True)     # the engine runs in its own process
        con.execute(f"SET memory_limit='{ENGINE_MAX_MEM_MB // 2}MB'")
        con.execute(f"SET temp_directory='{spill}'")
        con.execute("SET preserve_insertion_order=false")
    return con


def run_splink(registry: pd.DataFrame, queries: pd.DataFrame, threshold: float = SPLINK_THRESHOLD,
               margin_bits: float = SPLINK_MARGIN_BITS, seed: int = 20141) -> pd.DataFrame:
    """Splink 5 with DuckDB on the parsed components: id, house_code (None = abstained), score."""
    from splink import DuckDBAPI, Linker, block_on

    logging.getLogger("splink").setLevel(logging.WARNING)
    reg, qry = parsed_frame(registry, "house_code"), parsed_frame(queries, "id")
    con = _duckdb_connection()
    db = DuckDBAPI(con)
    linker = Linker([db.register(reg, dataset_display_name="registry"),
                     db.register(qry, dataset_display_name="queries")],
                    splink_settings(len(reg)), log_level=logging.WARNING)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=seed)
    # EM on pairs agreeing on building+unit+room (almost all matches in a district); the numbers themselves
    # and village/lane keep their starting m (EM on lane_no+room took "same room in another lane" as the match)
    em_ok = [_em(linker, block_on("building", "unit", "room"))]
    # keep every pair that could be the best (>= threshold) or its close runner-up
    min_weight = math.log2(threshold / (1 - threshold)) - margin_bits
    pred = linker.inference.predict(threshold_match_weight=min_weight)
    # only each query's best two candidates leave DuckDB (a district's predictions do not fit in pandas);
    # same order as splink_decide: weight descending, then house code
    pairs = con.execute(f"""
        WITH p AS (
            SELECT CASE WHEN source_dataset_l = 'queries' THEN unique_id_l ELSE unique_id_r END AS query_id,
                   CASE WHEN source_dataset_l = 'queries' THEN unique_id_r ELSE unique_id_l END AS house_code,
                   match_weight, match_probability
            FROM {pred.physical_name})
        SELECT query_id, house_code, match_weight, match_probability FROM p
        QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY match_weight DESC, house_code) <= 2
    """).df()
    out = splink_decide(pairs, threshold, margin_bits)
    missing = pd.DataFrame({"id": qry.loc[~qry["unique_id"].isin(out["id"]), "unique_id"], "house_code": None,
                            "score": None})
    if len(missing):
        out = pd.concat([out.astype({"house_code": object}), missing.astype({"house_code": object, "score": float})],
                        ignore_index=True)
    out.attrs["em_sessions_ok"] = em_ok
    return out


# --- the benchmark -----------------------------------------------------------------------------------------

def _engine_cmd(engine: str, task: Path, out: Path) -> list[str]:
    cap = ["prlimit", f"--as={ENGINE_MAX_MEM_MB * 2**20}"] if ENGINE_MAX_MEM_MB and engine != "gridlake-spark" else []
    return [*cap, "timeout", "-s", "KILL", str(ENGINE_TIMEOUT_S), sys.executable, "-m", "tools.bench.matching", f"run-{engine}", "--registry", str(task / "registry.parquet"),
            "--input", str(task / "queries.parquet"), "--output", str(out)]


def _run_engine(engine: str, task: Path, truth: pd.DataFrame, n_queries: int, env: dict[str, str]
                ) -> dict[str, Any]:
    from tools.bench.kit import measure

    out = task / f"answers_{engine}.parquet"
    out.unlink(missing_ok=True)
    m = measure(_engine_cmd(engine, task, out), env)
    entry: dict[str, Any] = {"seconds": m.seconds, "returncode": m.returncode,
                             "peak_python_rss_mb": m.peak_python_rss_mb, "peak_jvm_rss_mb": m.peak_jvm_rss_mb,
                             "peak_rss_mb": round(m.peak_python_rss_mb + m.peak_jvm_rss_mb, 1),
                             "records_per_s": round(n_queries / m.seconds, 1) if m.seconds and m.returncode == 0 else None}
    if m.returncode != 0 or not out.exists():
        entry["error"] = (f"killed after the {ENGINE_TIMEOUT_S}s limit" if m.returncode in (-9, 124, 137)
                          else f"engine failed, exit {m.returncode}"
                          + (f" (address-space cap {ENGINE_MAX_MEM_MB} MB)" if ENGINE_MAX_MEM_MB else ""))
        return entry
    timings = out.with_suffix(".timings.json")
    if timings.exists():
        entry["inner_s"] = json.loads(timings.read_text(encoding="utf-8"))
    answers = pd.read_parquet(out)
    entry["scores"] = score_answers(answers, truth)
    entry["number_conflicts"] = number_conflicts(answers, task)
    log.info("%s: %.1fs, %s rec/s, peak %s MB, F1 %s", engine, m.seconds, entry["records_per_s"],
             entry["peak_rss_mb"], entry["scores"]["overall"]["f1"])
    return entry


def _targets(entry: dict[str, Any]) -> dict[str, Any]:
    g, s = entry["engines"].get("gridlake", {}), entry["engines"].get("splink", {})
    go, so = g.get("scores", {}).get("overall"), s.get("scores", {}).get("overall")
    met: dict[str, Any] = {"gridlake_completed": bool(go), "splink_completed": bool(so)}
    if go:
        met["gridlake_precision"] = go["precision"] >= TARGETS["gridlake_precision"]
        met["gridlake_recall"] = go["recall"] >= TARGETS["gridlake_recall"]
        if "number_conflicts" in g:
            met["gridlake_never_other_numbers"] = g["number_conflicts"]["any"] == 0
    if go and so and g.get("records_per_s") and s.get("records_per_s"):
        ratio = g["records_per_s"] / s["records_per_s"]
        entry["throughput_ratio"] = round(ratio, 3)
        met["throughput_at_least_splink"] = ratio >= TARGETS["throughput_ratio_min"]
        met["f1_at_least_splink"] = go["f1"] >= so["f1"]
    if entry["scale"] == "district" and g.get("peak_rss_mb") is not None:
        met["district_within_24gib"] = g["peak_rss_mb"] / 1024 <= TARGETS["district_peak_rss_gib"]
    return met


def bench_matching(scales: list[str], root: Path, regenerate: bool = False,
                   engines: tuple[str, ...] = ("gridlake", "gridlake-spark", "splink"),
                   noise_models: tuple[str, ...] = ("default",), seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Generate each scale with each noise model and ``seed`` under ``root/<scale>[-<noise>]-s<seed>``
    (reused when a previous bench generated it, unless ``regenerate``), build the task and run every engine;
    return the report (one entry per scale and noise model, each with its seed)."""
    from tools.bench.kit import measure
    from tools.generate.config import generator_info

    unknown = [n for n in noise_models if n not in NOISE_MODELS]
    if unknown:
        raise ValueError(f"--noise: unknown noise model(s) {unknown}; known: {', '.join(NOISE_MODELS)}")
    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    results = []
    for scale, noise in [(s, n) for s in scales for n in noise_models]:
        data = root / f"{scale}{'' if noise == 'default' else '-' + noise}-s{seed}"
        marker = data / ".bench-generated"
        entry: dict[str, Any] = {"scale": scale, "noise_model": noise, "seed": seed, "data": str(data)}
        if regenerate or not marker.exists():
            shutil.rmtree(data, ignore_errors=True)
            gen = measure([sys.executable, "-m", "gridlake.cli", "generate", "--scale", scale, "--days", "1",
                           "--noise", noise, "--seed", str(seed), "--data", str(data)],
                          dict(env, GRIDLAKE_DATA=str(data)))
            entry["generate"] = gen.__dict__
            if gen.returncode != 0:
                entry["error"] = "generate failed"
                results.append(entry)
                continue
            marker.write_text("ok\n", encoding="utf-8")
        else:
            entry["generate"] = "reused"
        entry["generator"] = generator_info(data / "truth")   # what the data really is, read back
        task = data / "bench-task"
        t0 = time.monotonic()
        entry["task"] = write_task(data, task)
        entry["task"]["build_s"] = round(time.monotonic() - t0, 2)
        truth = pd.read_parquet(task / "truth.parquet")
        entry["engines"] = {}
        for engine in engines:
            if engine == "gridlake-spark" and scale not in SPARK_SCALES:
                entry["engines"][engine] = {"skipped": "Spark path not enabled for this scale "
                                                       "(GRIDLAKE_BENCH_SPARK_SCALES)"}
                continue
            if engine == "splink" and not _splink_available():
                entry["engines"][engine] = {"skipped": "splink not installed (pip extra 'bench')"}
                continue
            entry["engines"][engine] = _run_engine(engine, task, truth, entry["task"]["queries"], env)
        entry["targets_met"] = _targets(entry)
        results.append(entry)
    return {"kind": "matching", **run_info(), "seed": seed, "noise_models": list(noise_models), "targets": TARGETS,
            "limits": {"engine_timeout_s": ENGINE_TIMEOUT_S, "engine_max_mem_mb": ENGINE_MAX_MEM_MB},
            "splink": {"version": _splink_version(), "threshold": SPLINK_THRESHOLD, "margin_bits": SPLINK_MARGIN_BITS},
            "results": results}


def _splink_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("splink") is not None


def _splink_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("splink")
    except Exception:  # not installed
        return None


# --- runner entry: python -m tools.bench.matching run-<engine> ... -----------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m tools.bench.matching run-gridlake|run-gridlake-spark|run-splink --registry R --input Q --output O``:
    resolve, write the answers (id, house_code, score) to O and the inner timings to O.timings.json."""
    ap = argparse.ArgumentParser(prog="python -m tools.bench.matching")
    ap.add_argument("engine", choices=["run-gridlake", "run-gridlake-spark", "run-splink"])
    ap.add_argument("--registry", required=True, type=Path)
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--output", required=True, type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.monotonic()
    registry, queries = pd.read_parquet(args.registry), pd.read_parquet(args.input)
    t1 = time.monotonic()
    if args.engine == "run-gridlake":
        out = run_gridlake(registry, queries)
    elif args.engine == "run-gridlake-spark":
        out = run_gridlake_spark(registry, queries, args.output.parent / "spark-data")
    else:
        out = run_splink(registry, queries)
    t2 = time.monotonic()
    attrs = dict(out.attrs)
    out = out.assign(house_code=out["house_code"].astype(object).where(out["house_code"].notna(), None))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out[["id", "house_code", "score"]].astype({"id": str, "score": float}).to_parquet(args.output, index=False)
    args.output.with_suffix(".timings.json").write_text(json.dumps(
        {"load_s": round(t1 - t0, 2), "resolve_s": round(t2 - t1, 2), "records": len(queries),
         "registry": len(registry), "answered": int(out["house_code"].notna().sum()), **attrs}),
        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
