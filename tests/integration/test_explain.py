"""Issue 19 item 6: ``gridlake explain`` shows the whole chain of one case, pseudonymised."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gridlake import io
from gridlake.errors import GridlakeError
from gridlake.explain import gather, render_text
from schemas.gold import DISCREPANCIES
from schemas.silver import VERIFICATIONS

pytestmark = pytest.mark.spark

D = dt.date(2026, 11, 6)


def test_explain_chain(spark, settings):
    hist = [(D - dt.timedelta(days=5), "open", "system"), (D - dt.timedelta(days=2), "confirmed", "WGY1"),
            (D, "open", "system")]
    row = {"discrepancy_id": "abc", "rule": "R5", "rule_code": "person_seen_not_declared", "severity": "medium",
           "house_code": "440304001001001001", "source": None, "record_id": None, "street": "沙头街道",
           "community": "上沙社区", "grid_id": "G1", "person_key": "pk_0123456789abcdef", "masked_id": "4403**********1234",
           "masked_name": "张*明", "masked_phone": None, "evidence": [("police_incidents", "P1", "公安")],
           "reason_codes": ["PERSON_IN_ENFORCEMENT"], "corroborating_sources": 1, "match_confidence": 0.9,
           "priority": 2.7, "detected": True, "first_seen": hist[0][0], "last_seen": D, "last_evaluated": D,
           "last_evidence_date": D, "due_date": D + dt.timedelta(days=7), "status": "open", "status_since": D,
           "status_history": hist, "verified_at": D - dt.timedelta(days=2), "verification_outcome": "confirmed"}
    io.write_table(spark.createDataFrame([tuple(row.get(f.name) for f in DISCREPANCIES.fields)], DISCREPANCIES),
                   settings, "gold", "discrepancies", "overwrite")
    io.write_table(spark.createDataFrame([("police_incidents", "P1", "440304001001001001", 0.93, "fuzzy",
                                           "road=0.95;building=exact")],
                                         "source string, record_id string, house_code string, score double, "
                                         "method string, explanation string"), settings, "gold", "house_resolution",
                   "overwrite")
    io.write_table(spark.createDataFrame([("P1", dt.datetime(2026, 11, 6, 21, 0), "13812345678 张三明")],
                                         "incident_id string, reported_at timestamp, note string"),
                   settings, "silver", "police_incidents", "overwrite")
    io.write_table(spark.createDataFrame([("V1", "abc", dt.datetime(2026, 11, 4, 10), "confirmed", "WGY1",
                                           "电话13812345678", None, "G1", "f", "0", 1, "r", D)], VERIFICATIONS),
                   settings, "silver", "verifications", "overwrite")
    doc = gather(spark, settings, "abc")
    assert doc["rule"]["id"] == "R5" and doc["rule"]["parameters"]["window_days"] == 90
    ev = doc["evidence"][0]
    assert ev["department"] == "公安" and ev["date"].startswith("2026-11-06")
    assert ev["match"]["method"] == "fuzzy" and "building=exact" in ev["match"]["explanation"]
    f = doc["priority"]
    assert f["severity_weight"] == 3.0 and f["recency"] == 1.0 and abs(f["product"] - 2.7) < 1e-9
    assert [h["status"] for h in doc["history"]] == ["open", "confirmed", "open"]
    assert doc["verifications"][0]["verification_id"] == "V1"
    text = render_text(doc) + json.dumps(doc, ensure_ascii=False, default=str)
    assert "13812345678" not in text and "张三明" not in text  # notes and raw values never read
    assert "pk_0123456789abcdef" in text and "张*明" in text
    with pytest.raises(GridlakeError):
        gather(spark, settings, "nope")
