"""conf/rules.yaml's officers' loop keys: outcomes (the dropdown) and deadlines, validated with named keys."""

from __future__ import annotations

import pytest

from gridlake.config import ConfigError
from gridlake.loop_config import load_loop, parse_loop
from gridlake.rules_config import load_rules


def test_repo_config_loads():
    loop = load_loop()
    assert loop.labels[0] == "属实" and loop.outcomes["地址错误"] == "wrong_address"
    assert loop.deadlines.days == {"critical": 2, "high": 3, "medium": 7, "low": 14}
    load_rules()  # the rules loader accepts the new sections


@pytest.mark.parametrize("doc,where", [
    ({"verification_outcomes": {"属实": "maybe"}}, "rules.verification_outcomes.属实"),
    ({"verification_outcomes": {"a,b": "confirmed"}}, "rules.verification_outcomes.a,b"),
    ({"deadlines": {"days": {"critical": 2, "high": 3, "medium": 7}}}, "rules.deadlines.days"),
    ({"deadlines": {"days": {"critical": 0, "high": 3, "medium": 7, "low": 14}}}, "rules.deadlines.days"),
    ({"deadlines": {"backlog_age_buckets": [14, 7]}}, "rules.deadlines.backlog_age_buckets"),
    ({"deadlines": {"street_after": 3}}, "rules.deadlines.street_after"),
])
def test_bad_values_name_their_key(doc, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse_loop(doc)
