"""Integer codes for the pandas engine: values factorised once per side pair, compared as ints.

Both sides of a linkage are coded *jointly* (one factorisation over left and right values),
so equal values get equal codes on both sides and a missing value is ``-1``. Blocking keys,
compared values and the normalised text are coded once per run; the engine then gathers and
compares ``int`` arrays per pair instead of strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["map_unique", "joint_codes", "combine_codes"]


def map_unique(values: pd.Series | np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
    """``fn`` applied once per distinct non-missing value (object array; missing stays ``None``)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [fn(u) for u in uniques]
    mapped[-1] = None
    return mapped[codes]          # code -1 (missing) takes the last slot


def joint_codes(left: np.ndarray | pd.Series, right: np.ndarray | pd.Series
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of ``left`` and ``right`` from one factorisation (missing -> -1) and the distinct values. When
    ``right`` is ``left`` (the same object) it is factorised once and both codes are the same array."""
    lv = np.asarray(left, dtype=object)
    if right is left:    # a side linked with itself: one factorisation (the same codes as of the concatenation)
        codes, uniques = pd.factorize(lv, use_na_sentinel=True)
        codes = codes.astype(np.int64, copy=False)
        return codes, codes, np.asarray(uniques, dtype=object)
    rv = np.asarray(right, dtype=object)
    codes, uniques = pd.factorize(np.concatenate([lv, rv]), use_na_sentinel=True)
    codes = codes.astype(np.int64, copy=False)
    return codes[: len(lv)], codes[len(lv):], np.asarray(uniques, dtype=object)


def combine_codes(parts: list[np.ndarray]) -> np.ndarray:
    """One dense code per distinct tuple of the parts' codes; -1 where any part is missing."""
    out = np.asarray(parts[0], dtype=np.int64)
    for part in parts[1:]:
        part = np.asarray(part, dtype=np.int64)
        ok = (out >= 0) & (part >= 0)
        width = int(part.max()) + 1 if len(part) else 1
        dense, _ = pd.factorize(out[ok] * width + part[ok])
        out = np.full(len(out), -1, dtype=np.int64)
        out[ok] = dense
    return out
