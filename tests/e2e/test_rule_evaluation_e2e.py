"""`gridlake evaluate` per rule and per list on the small generated district (tests/e2e/conftest.py).

Every collision rule is scored against the generator's planted truth, and so are tonight's lists
(what officers actually receive, after capping). The lists must reach precision 0.90 overall; the
noise model is the fixture's (GRIDLAKE_E2E_NOISE, e.g. ``second``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from jobs.gold.rule_evaluation import LIST_TARGET, NO_CASES, RULES, evaluate_rules
from tests.e2e.conftest import DAYS, NOISE, SEED, START

pytestmark = [pytest.mark.e2e, pytest.mark.spark]
log = logging.getLogger(__name__)


def test_rules_and_lists_against_planted_truth(district, spark):
    settings, _ = district
    results = {}
    for i in range(DAYS):
        night = START + dt.timedelta(days=i)
        results[night.isoformat()] = evaluate_rules(spark, settings, night)
    report = {"seed": SEED, "noise": NOISE or "default", "nights": results}
    out = settings.reports / "rule_evaluation_e2e.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    log.info("rule evaluation written to %s", out)
    for night, res in results.items():
        assert set(res["rules"]) == set(RULES)
        for rule, m in res["rules"].items():
            if m["truth"] == 0:
                assert m["recall"] == NO_CASES, (night, rule)
            else:
                assert 0.0 <= m["recall"] <= 1.0, (night, rule)
        assert res["overall"]["truth"] > 0 and res["overall"]["precision"] >= 0.90, (night, res["overall"])
        lists = res["lists"]
        assert lists["listed"] > 0, night
        assert lists["overall"]["precision"] >= LIST_TARGET, (night, lists["overall"])
        assert res["houses"] > 0 and res["r6_cases_per_1000_houses"] is not None
