"""Per-rule figures of ``gridlake evaluate``: a rule with no planted case says so instead of scoring 1.0."""

from __future__ import annotations

from jobs.gold.rule_evaluation import NO_CASES, meets_target, overall, rule_metrics


def test_no_planted_case_reports_no_cases_not_one():
    m = rule_metrics(tp=0, fp=0, waiting_tp=0, waiting_fp=0, found=0, waiting_found=0, missed=0)
    assert m["precision"] == NO_CASES and m["recall"] == NO_CASES
    m = rule_metrics(tp=0, fp=3, waiting_tp=0, waiting_fp=0, found=0, waiting_found=0, missed=0)
    assert m["precision"] == 0.0 and m["recall"] == NO_CASES  # raised three, none planted


def test_waiting_cases_are_not_asserted():
    # 8 asserted (6 right), 3 waiting (2 planted), 10 planted: 6 found, 2 waiting, 2 missed
    m = rule_metrics(tp=6, fp=2, waiting_tp=2, waiting_fp=1, found=6, waiting_found=2, missed=2)
    assert (m["raised"], m["waiting"], m["truth"], m["fn"]) == (8, 3, 10, 2)
    assert m["precision"] == 0.75 and m["recall"] == 0.8


def test_overall_and_target_skip_rules_without_cases():
    rules = {"R1": rule_metrics(9, 1, 0, 0, 9, 0, 0), "R2": rule_metrics(0, 0, 0, 0, 0, 0, 0)}
    o = overall(rules)
    assert (o["raised"], o["tp"], o["truth"], o["precision"], o["recall"]) == (10, 9, 9, 0.9, 1.0)
    assert meets_target(rules, 0.9) and not meets_target(rules, 0.95)
