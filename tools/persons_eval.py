"""Evaluate person resolution against the generator's truth (no CLI here: ``gridlake evaluate`` wires it).

Metrics (pure functions over ``record_key -> predicted person`` and ``record_key -> true person``):

* **pairwise** precision / recall / F1: over unordered record pairs; a predicted pair is two records in one
  predicted person, a true pair two records of one true person;
* **B-cubed** precision / recall / F1 (cluster level): per record, the share of its predicted cluster that is
  truly its person (precision) and the share of its true person that is in its predicted cluster (recall),
  averaged over records; and the share of true persons predicted exactly (``exact_clusters``);
* the same pairwise numbers restricted to pairs **involving a record without a valid ID number** (the pairs
  the ID cannot decide: the issue's target) and per **noise kind** (pairs involving a record with that kind);
* ``different_valid_id_links``: predicted pairs whose two valid ID numbers differ (must be 0);
* ``without_valid_id_by_evidence``: the true pairs involving a record without a valid ID number split by
  what the delivered records give to link them: ``corroborated`` (a phone equal or within two edits, a
  phone seen at the other record's house, the same house, ID texts within one edit, or the same birth
  date from the ID) or ``name_only`` (nothing but the name: the issue's rule forbids linking those, since
  a namesake without an ID looks the same), with the recall of each.

The report holds counts and ratios only: no names, phones, ID numbers or person keys.
"""

from __future__ import annotations

import logging
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matching.person_link import id_parts, resolve_persons

log = logging.getLogger(__name__)

__all__ = ["pairwise_counts", "bcubed", "evaluate_persons_frame", "evaluate_persons", "format_report"]


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 6) if b else None


def _f1(p: float | None, r: float | None) -> float | None:
    return round(2 * p * r / (p + r), 6) if p and r else None


def _pairs(groups: pd.Series) -> set[tuple[int, int]]:
    """Unordered pairs (as sorted positions) of records sharing a group label."""
    out: set[tuple[int, int]] = set()
    for idx in pd.Series(np.arange(len(groups))).groupby(groups.to_numpy()).groups.values():
        if len(idx) > 1:
            out.update(combinations(sorted(int(i) for i in idx), 2))
    return out


def pairwise_counts(pred: pd.Series, truth: pd.Series, involve: np.ndarray | None = None) -> dict[str, Any]:
    """Pairwise ``tp``, ``predicted``, ``true``, ``precision``, ``recall``, ``f1`` of predicted person labels
    ``pred`` against ``truth`` (aligned by position); with ``involve`` (bool per record) only pairs with at
    least one involved record count."""
    pp, tp_ = _pairs(pred.reset_index(drop=True)), _pairs(truth.reset_index(drop=True))
    if involve is not None:
        pp = {p for p in pp if involve[p[0]] or involve[p[1]]}
        tp_ = {p for p in tp_ if involve[p[0]] or involve[p[1]]}
    tp = len(pp & tp_)
    p, r = _ratio(tp, len(pp)), _ratio(tp, len(tp_))
    return {"tp": tp, "predicted": len(pp), "true": len(tp_), "precision": p, "recall": r, "f1": _f1(p, r)}


def bcubed(pred: pd.Series, truth: pd.Series) -> dict[str, Any]:
    """B-cubed precision, recall and F1, and ``exact_clusters`` (share of true persons predicted exactly)."""
    df = pd.DataFrame({"p": pred.to_numpy(dtype=object), "t": truth.to_numpy(dtype=object)})
    both = df.groupby(["p", "t"]).size().rename("pt")
    df = df.join(both, on=["p", "t"])
    df["np"] = df.groupby("p")["p"].transform("size")
    df["nt"] = df.groupby("t")["t"].transform("size")
    p = float((df["pt"] / df["np"]).mean()) if len(df) else None
    r = float((df["pt"] / df["nt"]).mean()) if len(df) else None
    exact = df[(df["pt"] == df["np"]) & (df["pt"] == df["nt"])]["t"].nunique()
    return {"precision": None if p is None else round(p, 6), "recall": None if r is None else round(r, 6),
            "f1": _f1(p, r), "exact_clusters": _ratio(int(exact), int(df["t"].nunique())),
            "persons_true": int(df["t"].nunique()), "persons_predicted": int(df["p"].nunique())}


def evaluate_persons_frame(resolution: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """The report of a resolution (``record_key``, ``person_key``) against the truth (``record_key``,
    ``person_id``, ``noise``, ``id_number`` as delivered)."""
    df = truth[["record_key", "person_id", "noise", "id_number"]].merge(
        resolution[["record_key", "person_key"]], on="record_key", how="inner").reset_index(drop=True)
    valid = np.array([id_parts(v)[0] if isinstance(v, str) and v.strip() else None for v in df["id_number"]],
                     dtype=object)
    no_valid = np.array([v is None for v in valid])
    pred, true = df["person_key"], df["person_id"]
    report: dict[str, Any] = {
        "records": len(df), "records_without_valid_id": int(no_valid.sum()),
        "pairwise": pairwise_counts(pred, true),
        "pairwise_without_valid_id": pairwise_counts(pred, true, no_valid),
        "bcubed": bcubed(pred, true),
        "different_valid_id_links": sum(1 for a, b in _pairs(pred) if valid[a] and valid[b] and valid[a] != valid[b]),
    }
    kinds = df["noise"].fillna("").str.split(";")
    by_kind = {}
    for kind in sorted({k for ks in kinds for k in ks if k}):
        involve = np.array([kind in ks for ks in kinds])
        by_kind[kind] = {"records": int(involve.sum()), **pairwise_counts(pred, true, involve)}
    report["by_noise"] = by_kind
    if {"name", "phone", "house_code"} <= set(truth.columns):
        report["without_valid_id_by_evidence"] = evidence_split(df, truth, no_valid)
    return report


def _corroborated(a: pd.Series, b: pd.Series, phones_at: dict[str, set[str]]) -> bool:
    """Whether two prepared mentions share anything but the name (see the module doc)."""
    from rapidfuzz.distance import Levenshtein

    if a["phone"] and b["phone"] and Levenshtein.distance(a["phone"], b["phone"]) <= 2:
        return True
    if any(x["phone"] and y["house_code"] and x["phone"] in phones_at.get(y["house_code"], ()) for x, y in ((a, b), (b, a))):
        return True
    if a["house_code"] and a["house_code"] == b["house_code"]:
        return True
    if a["id_text"] and b["id_text"] and Levenshtein.distance(a["id_text"], b["id_text"]) <= 1:
        return True
    return bool(a["birth"] and a["birth"] == b["birth"])


def evidence_split(df: pd.DataFrame, truth: pd.DataFrame, no_valid: np.ndarray) -> dict[str, Any]:
    """Recall on the true pairs involving a record without a valid ID, ``corroborated`` vs ``name_only``
    (``df``: the evaluated rows with ``record_key``, ``person_id``, ``person_key``; ``truth``: the delivered
    columns by ``record_key``)."""
    from matching.person_link import prepare_mentions

    cols = ["record_key", "name", "phone", "id_number", "house_code"]
    prep = prepare_mentions(truth[cols].drop_duplicates("record_key")).set_index("record_key")
    phones_at: dict[str, set[str]] = {}
    for h, ph in zip(prep["house_code"], prep["phone"], strict=True):
        if h and ph:
            phones_at.setdefault(h, set()).add(ph)
    out = {k: {"true": 0, "tp": 0} for k in ("corroborated", "name_only")}
    keys, pkeys = df["record_key"].to_numpy(dtype=object), df["person_key"].to_numpy(dtype=object)
    for a, b in _pairs(df["person_id"]):
        if not (no_valid[a] or no_valid[b]):
            continue
        kind = "corroborated" if _corroborated(prep.loc[keys[a]], prep.loc[keys[b]], phones_at) else "name_only"
        out[kind]["true"] += 1
        out[kind]["tp"] += int(pkeys[a] == pkeys[b])
    for d in out.values():
        d["recall"] = _ratio(d["tp"], d["true"])
    return out


def evaluate_persons(data: str | Path, key: bytes) -> dict[str, Any]:
    """Resolve the generated ``data/truth/person_mentions.parquet`` (its delivered columns only) and
    evaluate against its truth; the report also names the model's EM iterations and the link methods."""
    truth = pd.read_parquet(Path(data) / "truth" / "person_mentions.parquet")
    delivered = truth[["record_key", "name", "phone", "id_number", "house_code"]]
    resolution, model = resolve_persons(delivered, key)
    report = evaluate_persons_frame(resolution, truth)
    report["methods"] = resolution["method"].value_counts().to_dict()
    report["em"] = {"iterations": model.iterations, "converged": model.converged, "lambda": model.lam}
    return report


def format_report(report: dict[str, Any]) -> str:
    """Plain-text lines of a report (for ``gridlake evaluate``): counts and ratios only."""
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    def pr(d: dict[str, Any]) -> str:
        return f"P {f(d['precision'])}  R {f(d['recall'])}  F1 {f(d['f1'])}  (tp {d['tp']}, predicted {d['predicted']}, true {d['true']})"

    lines = [f"persons: {report['records']} mentions, {report['records_without_valid_id']} without a valid ID number",
             f"  pairwise                    {pr(report['pairwise'])}",
             f"  pairwise, without valid ID  {pr(report['pairwise_without_valid_id'])}",
             "  B-cubed                     P {precision}  R {recall}  F1 {f1}  exact clusters {exact_clusters}".format(
                 **report["bcubed"]),
             f"  links between different valid IDs: {report['different_valid_id_links']}"]
    for kind, d in report.get("without_valid_id_by_evidence", {}).items():
        lines.append(f"  without valid ID, {kind:<13} recall {f(d['recall'])}  (tp {d['tp']}, true {d['true']})")
    for kind, d in report.get("by_noise", {}).items():
        lines.append(f"  noise {kind:<18} {d['records']:>7} records  {pr(d)}")
    return "\n".join(lines)
