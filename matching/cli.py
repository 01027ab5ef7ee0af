"""CLI handlers: ``gridlake resolve-addresses`` and ``gridlake link`` (pandas engine, no Spark)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from gridlake.errors import GridlakeError

log = logging.getLogger(__name__)


def read_frame(path: str, required: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a UTF-8 CSV or a Parquet file as strings; GridlakeError when unreadable or a column is missing."""
    p = Path(path)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(p)
            df = df.astype({c: "string" for c in df.columns}).astype(object).where(df.notna(), None)
        else:
            df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            df = df.where(df != "", None)
    except FileNotFoundError:
        raise GridlakeError(f"file not found: {path}") from None
    except UnicodeDecodeError:
        raise GridlakeError(f"{path} is not UTF-8 text; convert it (e.g. iconv -f gb18030 -t utf-8)") from None
    except Exception as exc:  # pandas/pyarrow parse errors
        raise GridlakeError(f"cannot read {path}: {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise GridlakeError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(df.columns)})")
    return df


def write_frame(df: pd.DataFrame, path: str) -> None:
    """Write CSV (UTF-8) or Parquet by extension."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() in (".parquet", ".pq"):
            df.to_parquet(p, index=False)
        else:
            df.to_csv(p, index=False, encoding="utf-8")
    except OSError as exc:
        raise GridlakeError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_resolve(args: argparse.Namespace) -> int:
    """``gridlake resolve-addresses --registry R.csv --input Q.csv --output O.csv``."""
    from matching.resolve import resolve_addresses

    registry = read_frame(args.registry, ["house_code", "address"])
    queries = read_frame(args.input, ["id", "address"])
    out = resolve_addresses(registry, queries)
    write_frame(out, args.output)
    resolved = int(out["house_code"].notna().sum())
    log.info("resolved %d of %d addresses (%d unresolved) -> %s", resolved, len(out), len(out) - resolved,
             args.output)
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    """``gridlake link --spec S.yaml --left A --right B --output O``: one decision per left record."""
    from matching.engine import link
    from matching.spec import load_spec

    spec = load_spec(args.spec)
    need_l = [spec.left_id] + ([spec.parse_address["left"]] if "left" in spec.parse_address else [])
    need_r = [spec.right_id] + ([spec.parse_address["right"]] if "right" in spec.parse_address else [])
    left = read_frame(args.left, need_l)
    right = read_frame(args.right, need_r)
    try:
        decisions, model = link(left, right, spec)
    except KeyError as exc:
        raise GridlakeError(f"spec {spec.name}: column {exc} not found in the inputs") from None
    write_frame(decisions, args.output)
    log.info("linkage %s: %d of %d left records matched (EM iterations %d, lambda %.3g) -> %s", spec.name,
             int(decisions["right_id"].notna().sum()), len(decisions), model.iterations, model.lam, args.output)
    return 0
