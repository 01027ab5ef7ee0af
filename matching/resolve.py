"""Address resolution with the pandas engine: free text -> house code, score, method, explanation."""

from __future__ import annotations

import pandas as pd

from matching.engine import link
from matching.scoring import FSModel
from matching.spec import LinkageSpec, load_spec

__all__ = ["resolve_addresses", "RESOLUTION_COLUMNS"]

RESOLUTION_COLUMNS = ["id", "house_code", "score", "method", "explanation"]
METHODS = {"exact": "exact_address", "fuzzy": "fuzzy", "unresolved": "unresolved"}


def resolve_addresses(registry: pd.DataFrame, queries: pd.DataFrame, spec: LinkageSpec | None = None,
                      model: FSModel | None = None) -> pd.DataFrame:
    """Resolve ``queries`` (columns id, address) against ``registry`` (house_code, address).

    Returns one row per distinct query id: house_code (None when it abstains), score
    (posterior match probability), method (exact_address | fuzzy | unresolved) and the explanation.
    """
    spec = spec or load_spec("address_to_house")
    left = queries.rename(columns={"id": spec.left_id}) if spec.left_id != "id" else queries
    right = registry.rename(columns={"house_code": spec.right_id}) if spec.right_id != "house_code" else registry
    decisions, _ = link(left, right.drop_duplicates(spec.right_id), spec, model)
    out = pd.DataFrame({
        "id": decisions["left_id"],
        "house_code": decisions["right_id"],
        "score": decisions["score"],
        "method": decisions["method"].map(METHODS),
        "explanation": decisions["explanation"],
    })
    return out[RESOLUTION_COLUMNS]
