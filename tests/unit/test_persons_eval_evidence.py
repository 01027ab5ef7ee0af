"""tools.persons_eval: recall on pairs without a valid ID split by what the delivered records corroborate."""

from __future__ import annotations

import pandas as pd

from gridlake.ids import check_digit
from tools.persons_eval import evaluate_persons_frame

ID = "11010519491231002" + check_digit("11010519491231002")


def test_pairs_split_into_corroborated_and_name_only():
    truth = pd.DataFrame({
        "record_key": ["d:1#0", "p:1#0", "m:1#0", "p:2#0"],
        "person_id": ["A", "A", "A", "B"],
        "noise": ["", "id_missing", "id_missing;phone_missing", ""],
        "name": ["王小明", "王小明", "王小明", "李四"],
        "phone": ["13900001111", "139 0000 1111", None, "13700002222"],
        "id_number": [ID, None, None, None],
        "house_code": ["H1", "H7", "H9", "H2"],
    })
    # the resolution linked the phone-corroborated mention only
    resolution = pd.DataFrame({"record_key": ["d:1#0", "p:1#0", "m:1#0", "p:2#0"],
                               "person_key": ["a", "a", "x", "b"]})
    split = evaluate_persons_frame(resolution, truth)["without_valid_id_by_evidence"]
    # pairs with a record without a valid ID: (d1,p1) phone, (d1,m1) name only, (p1,m1) name only
    assert split["corroborated"] == {"true": 1, "tp": 1, "recall": 1.0}
    assert split["name_only"] == {"true": 2, "tp": 0, "recall": 0.0}
