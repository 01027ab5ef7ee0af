"""``gridlake evaluate``: compare house resolution with the generator's truth.

Reads ``gold.house_resolution`` (Delta, read without Spark) — or, when the lake has
none yet, resolves the landing files with the pandas engine — and
``DATA/truth/records.parquet`` (per record: source, record_id, true house_code, empty
when deliberately unresolvable, noise kinds). Writes ``DATA/reports/evaluation.json``:
precision, recall and F1 overall, by source and by noise kind, and the worst cases
(record ids and comparison levels only — never personal data), and ``generator``: the seed,
noise model and scale of the generator run that produced the data (``DATA/truth/manifest.json``).

Hook: if module ``tools.rule_evaluation`` exists with
``evaluate_rules(spark, settings, date) -> dict``, its per-rule results are included.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path

import pandas as pd

from gridlake.config import Settings, load_settings
from gridlake.errors import GridlakeError

log = logging.getLogger(__name__)

RECORD_SOURCES = ("declarations", "rentals", "police_incidents", "mediation_cases", "safety_inspections",
                  "family_planning")


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 5), "recall": round(r, 5), "f1": round(f1, 5), "tp": tp, "fp": fp, "fn": fn}


def score_resolution(resolution: pd.DataFrame, truth: pd.DataFrame, worst: int = 25) -> dict:
    """Precision/recall/F1 of ``resolution`` (source, record_id, house_code, method, explanation)
    against ``truth`` (source, record_id, house_code, noise). Quarantined truth rows are skipped."""
    t = truth.copy()
    if "quarantine" in t:
        t = t[~t["quarantine"].fillna(False).astype(bool)]
    t = t[t["source"].isin(RECORD_SOURCES)]
    t["true_code"] = t["house_code"].fillna("").astype(str)
    res = resolution[["source", "record_id", "house_code", "method", "explanation"]].rename(
        columns={"house_code": "pred_code"})
    df = t.drop(columns=["house_code"]).drop_duplicates(["source", "record_id"]).merge(
        res, on=["source", "record_id"], how="left")
    df["pred_code"] = df["pred_code"].fillna("").astype(str)
    df["tp"] = (df["pred_code"] != "") & (df["pred_code"] == df["true_code"])
    df["fp"] = (df["pred_code"] != "") & (df["pred_code"] != df["true_code"])
    df["fn"] = (df["true_code"] != "") & (df["pred_code"] != df["true_code"])

    def agg(frame: pd.DataFrame) -> dict:
        return {**_prf(int(frame["tp"].sum()), int(frame["fp"].sum()), int(frame["fn"].sum())), "records": len(frame)}

    noise = df.assign(kind=df["noise"].fillna("").astype(str).str.split(r"[;,|]")).explode("kind")
    noise["kind"] = noise["kind"].str.strip().replace("", "clean")
    unres = df[df["true_code"] == ""]
    bad = df[df["fp"] | df["fn"]].copy()
    bad["error"] = bad["fp"].map({True: "wrong_house", False: "missed"})
    bad = bad.sort_values(["fp", "source"], ascending=[False, True]).head(worst)
    return {
        "overall": agg(df),
        "by_source": {s: agg(g) for s, g in df.groupby("source")},
        "by_noise": {k: agg(g) for k, g in noise.groupby("kind")},
        # right answer "no house" (a typo'd number, no room, too little): abstaining is correct, any house wrong
        "unresolvable": {"records": len(unres), "abstained": int((unres["pred_code"] == "").sum()),
                         "answered_wrong": int((unres["pred_code"] != "").sum())},
        "methods": df["method"].fillna("missing").value_counts().to_dict(),
        "missing_in_resolution": int(df["method"].isna().sum()),
        "worst_cases": [{"source": r.source, "record_id": r.record_id, "error": r.error, "noise": r.noise,
                         "method": r.method, "levels": r.explanation} for r in bad.itertuples()],
    }


def _read_landing(landing: Path, source: str, date: str | None) -> pd.DataFrame:
    from gridlake.sources import get_source

    src = get_source(source)
    frames = []
    for d in sorted((landing / source).glob("*")):
        if date and d.name > date:
            continue
        for f in sorted(d.glob(src.file_glob)):
            if src.format == "xlsx":
                df = pd.read_excel(f, dtype=str)
            else:
                df = pd.read_csv(f, dtype=str, encoding=src.encoding, keep_default_na=False, on_bad_lines="skip")
            frames.append(df.rename(columns=src.header_to_canonical))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def resolve_landing(data: Path, date: str | None = None) -> pd.DataFrame:
    """Resolve the landing files with the pandas engine (no lake needed): the house-resolution columns."""
    from matching.resolve import resolve_addresses
    from matching.spec import load_spec

    housing = _read_landing(data / "landing", "housing", date)
    if housing.empty:
        raise GridlakeError(f"no housing delivery under {data / 'landing'}")
    latest = housing.drop_duplicates("house_code", keep="last")
    status = latest.get("status", pd.Series([""] * len(latest)))
    registry = latest[~status.isin(["已拆除", "demolished"])][["house_code", "address"]]
    ids = {"declarations": "declaration_id", "rentals": "rental_id", "police_incidents": "incident_id",
           "mediation_cases": "case_id", "safety_inspections": "inspection_id", "family_planning": "record_id"}
    queries = []
    for s, id_col in ids.items():
        df = _read_landing(data / "landing", s, date)
        if df.empty:
            continue
        queries.append(pd.DataFrame({"id": s + "|" + df[id_col].astype(str), "address": df["address"]}))
    q = pd.concat(queries, ignore_index=True).drop_duplicates("id")
    out = resolve_addresses(registry, q, load_spec("address_to_house"))
    out[["source", "record_id"]] = out["id"].str.split("|", n=1, expand=True)
    return out


def _read_gold(settings) -> pd.DataFrame | None:
    """gold.house_resolution, or None when the lake has no such table (any other error propagates)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    path = settings.table_path("gold", "house_resolution")
    try:
        table = DeltaTable(path)
    except TableNotFoundError:  # no table yet: the only case evaluated with the pandas engine
        return None
    return table.to_pandas()


def _rules_hook(settings, date: str | None) -> dict | None:
    """Per-rule precision/recall: of ``date``, or (no date) of every night that has planted truth
    and a gold evaluation - ``{"nights": {date: result}, **latest night's result}``."""
    try:
        mod = importlib.import_module("tools.rule_evaluation")
    except ImportError:
        return None
    from gridlake.spark import get_spark

    spark = get_spark(settings)
    if date:
        return mod.evaluate_rules(spark, settings, date)
    nights = sorted(p.stem.removeprefix("discrepancies_") for p in settings.truth.glob("discrepancies_*.parquet"))
    results: dict[str, dict] = {}
    for night in nights:
        try:
            results[night] = mod.evaluate_rules(spark, settings, night)
        except GridlakeError as exc:  # a generated night the lake has not run yet
            log.info("rules of %s not evaluated: %s", night, exc)
    if not results:
        return None
    return {**results[max(results)], "nights": results}


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def rule_tables(rules: dict) -> list:
    """Rich tables of the per-rule evaluation and of tonight's lists (what officers received, after capping)."""
    from rich.table import Table

    by_night = rules.get("nights") or {rules["date"]: rules}
    rt = Table(title=f"collision rules vs planted truth (target {rules['target']}; waiting = held for an address case)")
    for col in ("night", "rule", "truth", "raised", "waiting", "precision", "recall"):
        rt.add_column(col)
    lt = Table(title="tonight's lists vs planted truth (after capping)")
    for col in ("night", "rule", "truth", "listed", "precision", "recall", "due", "recall of due"):
        lt.add_column(col)
    for night, res in sorted(by_night.items()):
        rows = list(res["rules"].items()) + ([("all", res["overall"])] if "overall" in res else [])
        for rule, m in rows:
            rt.add_row(night, rule, str(m["truth"]), str(m["raised"]), str(m.get("waiting", "")),
                       _fmt(m["precision"]), _fmt(m["recall"]))
        if res.get("r6_cases_per_1000_houses") is not None:
            rt.add_row(night, "R6/1000 houses", "", _fmt(float(res["r6_cases_per_1000_houses"])), "", "", "")
        if res.get("r6_false_cases_per_1000_houses") is not None:
            rt.add_row(night, "R6 false/1000 houses", "", _fmt(float(res["r6_false_cases_per_1000_houses"])), "", "", "")
        lists = res.get("lists")
        if lists:
            for rule, m in [*lists["rules"].items(), ("all", lists["overall"])]:
                lt.add_row(night, rule, str(m["truth"]), str(m["raised"]), _fmt(m["precision"]), _fmt(m["recall"]),
                           str(m.get("truth_due", "")), _fmt(m.get("recall_due", "")))
    return [rt, lt] if any(r.get("lists") for r in by_night.values()) else [rt]


def pipeline_code_versions(settings: Settings) -> dict[str, str]:
    """``run_id -> code_version`` of every night's manifest in the lake: the code that made what is scored."""
    from gridlake.lifecycle.lake import read_manifests

    return {str(d["run_id"]): str(d["code_version"]) for d in read_manifests(settings)
            if d.get("run_id") and d.get("code_version")}


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Write DATA/reports/evaluation.json and print a short table."""
    from rich.console import Console
    from rich.table import Table

    settings = load_settings(getattr(args, "profile", None), getattr(args, "data", None))
    truth_path = settings.truth / "records.parquet"
    if not truth_path.exists():
        raise GridlakeError(f"no truth at {truth_path}: run `gridlake generate` first")
    truth = pd.read_parquet(truth_path)
    if args.date:
        truth = truth[truth["delivery_date"] <= args.date]
    resolution = _read_gold(settings)
    engine = "lake"
    if resolution is None:
        log.info("no gold.house_resolution in the lake: resolving the landing files with the pandas engine")
        resolution, engine = resolve_landing(settings.data, args.date), "pandas-landing"
    from tools.generate.config import generator_info

    gen = generator_info(settings.truth)
    from tools.bench.kit import run_info

    report = {"engine": engine, "date": args.date, "generator": gen, "made_with": run_info(),
              "pipeline_code_versions": pipeline_code_versions(settings),
              "house_resolution": score_resolution(resolution, truth)}
    rules = _rules_hook(settings, args.date)
    if rules is not None:
        report["rules"] = rules
    if (settings.truth / "person_mentions.parquet").exists():
        # person linkage (issue 21) on the generator's person mentions, in process; not yet a pipeline stage
        from gridlake.privacy import load_key
        from tools.persons_eval import evaluate_persons

        report["persons"] = evaluate_persons(settings.data, load_key(settings))
        pipeline = _person_resolution_hook(settings)
        if pipeline is not None:
            report["persons_pipeline"] = pipeline
    out = Path(args.output) if args.output else settings.reports / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    hr = report["house_resolution"]
    table = Table(title=f"house resolution vs truth ({engine}; noise model {gen.get('noise_model', '?')}, "
                        f"seed {gen.get('seed', '?')}, scale {gen.get('scale', '?')})")
    for col in ("slice", "records", "precision", "recall", "f1", "fp", "fn"):
        table.add_column(col)
    rows = [("overall", hr["overall"])] + [(f"source:{k}", v) for k, v in hr["by_source"].items()] + \
        [(f"noise:{k}", v) for k, v in hr["by_noise"].items()]
    for name, m in rows:
        table.add_row(name, str(m["records"]), f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
                      str(m["fp"]), str(m["fn"]))
    console = Console()
    console.print(table)
    if rules is not None:
        for t in rule_tables(rules):
            console.print(t)
    if "persons" in report:
        from tools.persons_eval import format_report

        console.print(format_report(report["persons"]))
    if "persons_pipeline" in report:
        from tools.persons_eval import format_report

        console.print("gold.person_resolution (the pipeline's own, as of its last night):")
        console.print(format_report(report["persons_pipeline"]))
    log.info("evaluation written to %s", out)
    return 0


def _person_resolution_hook(settings) -> dict | None:
    """gold.person_resolution (the matching stage's) against the truth's person mentions, when the lake has
    it: mentions are matched by ``source:record_id#mention_no`` (the truth's ``record_key``); only mentions
    of records that loaded (silver) or failed only their ID checksum are in the table. Counts and ratios only."""
    from gridlake import io
    from gridlake.spark import get_spark
    from tools.persons_eval import evaluate_persons_frame

    spark = get_spark(settings)
    if not io.table_exists(spark, settings, "gold", "person_resolution"):
        return None
    import pandas as pd

    res = io.read_table(spark, settings, "gold", "person_resolution").select(
        "source", "record_id", "mention_no", "person_key").toPandas()
    res["record_key"] = res["source"] + ":" + res["record_id"] + "#" + res["mention_no"].astype(str)
    truth = pd.read_parquet(settings.truth / "person_mentions.parquet")
    report = evaluate_persons_frame(res[["record_key", "person_key"]], truth)
    report["mentions_in_table"] = len(res)
    report["mentions_in_truth"] = int((~truth["noise"].fillna("").str.contains("namesake")).sum())
    return report
