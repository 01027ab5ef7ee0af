"""The person-linkage bench: its report holds counts, seconds and a digest of the answer, never a value."""

from __future__ import annotations

import json

import pandas as pd

from gridlake.ids import check_digit
from jobs.matching.persons import MENTION_COLUMNS
from tools.bench.persons_linkage import run

ID_A = "44030519900101123" + check_digit("44030519900101123")


def _mentions() -> pd.DataFrame:
    rows = [("declarations", "D1", 0, "declarant", "declarations:D1#0", "欧阳晓峰", "13900001111", ID_A, "H1", "valid"),
            ("police_incidents", "P1", 0, "party", "police_incidents:P1#0", "欧阳晓峰", "13900001111", ID_A, "H9",
             "valid"),
            ("police_incidents", "P1", 1, "party", "police_incidents:P1#1", "钱丙丁", None, None, "H9", "missing")]
    return pd.DataFrame(rows, columns=MENTION_COLUMNS)


def test_report_has_counts_and_a_digest_that_names_the_answer(tmp_path):
    src = tmp_path / "m.parquet"
    _mentions().to_parquet(src, index=False)
    a = run(src, tmp_path / "a.json", label="unit")
    b = run(src, tmp_path / "b.json")
    assert (a["mentions"], a["persons"]) == (3, 2)
    assert a["frame_sha256"] == b["frame_sha256"] and len(a["frame_sha256"]) == 64
    changed = _mentions()
    changed.loc[1, "id_number"] = None          # P1#0 no longer carries the ID: another answer, another digest
    changed.loc[1, "phone"] = None
    changed.to_parquet(src, index=False)
    assert run(src, tmp_path / "c.json")["frame_sha256"] != a["frame_sha256"]
    text = (tmp_path / "a.json").read_text(encoding="utf-8")
    assert json.loads(text)["label"] == "unit"
    assert ID_A not in text and "欧阳" not in text and "1390000" not in text
