"""The generator's site truth: the house an officer finds on the ground for an unresolvable address."""

from __future__ import annotations

import pandas as pd

from tools.generate.deliver import site_code
from tools.generate.site_truth import true_houses


def test_site_code_by_unresolvable_kind():
    assert site_code("H1", []) == "H1"                                     # resolvable: its house
    assert site_code("H1", ["num_fullwidth", "bracketed_note"]) == "H1"    # messy, still one house
    for codable in ("nonexistent_building", "nonexistent_room", "typo_building", "typo_room"):
        assert site_code("H1", [codable, "filler"]) == "H1"               # a wrong number: still one place
    for vague in ("too_little_info", "missing_room"):
        assert site_code("H1", [vague]) == ""                             # names no single house


def test_true_houses_reads_the_site_column_and_falls_back(tmp_path):
    with_site = tmp_path / "a.parquet"
    pd.DataFrame({"source": ["declarations"] * 3, "record_id": ["SB1", "SB2", "SB3"],
                  "house_code": ["", "", "H3"], "site_house_code": ["H1", "", "H3"]}).to_parquet(with_site)
    got = true_houses(with_site, [("declarations", "SB1"), ("declarations", "SB2"), ("declarations", "SB3")])
    assert got == {("declarations", "SB1"): "H1", ("declarations", "SB2"): None, ("declarations", "SB3"): "H3"}
    older = tmp_path / "b.parquet"
    pd.DataFrame({"source": ["declarations"], "record_id": ["SB1"], "house_code": [""]}).to_parquet(older)
    assert true_houses(older, [("declarations", "SB1")]) == {("declarations", "SB1"): None}
