"""conf/rules.yaml loads into validated pydantic models; unknown keys and bad values name themselves."""

from __future__ import annotations

import copy

import pytest
import yaml

from gridlake.config import CONF_DIR, ConfigError
from gridlake.rules_config import RULE_IDS, load_rules, parse_rules


@pytest.fixture
def doc() -> dict:
    return yaml.safe_load((CONF_DIR / "rules.yaml").read_text(encoding="utf-8"))


def test_the_shipped_rules_load():
    rules = load_rules()
    assert tuple(rules.rules) == RULE_IDS
    assert rules["R1"].code == "enforcement_undeclared_rental"
    assert rules["R1"].safety_severity == "critical" and rules["R1"].window_days == 90
    assert rules["R2"].grace_days == 14
    assert rules["R4"].area_per_person_m2 == 6.0 and rules["R4"].tenant_tolerance == 1
    assert rules["R3"].window_days == rules.defaults.window_days == 90  # inherited
    assert rules.defaults.capacity_per_officer == 15 and rules.defaults.escalate_after_days == 14
    assert rules["R7"].due_days == 7
    assert rules.weight("critical") == 5.0 and rules.weight("low") == 2.0


@pytest.mark.parametrize("path,value,needle", [
    (("rules", "R4", "area_per_persn_m2"), 6, "rules.R4.area_per_persn_m2: unknown key"),
    (("rules", "R2", "grace_days"), -1, "rules.R2.grace_days"),
    (("rules", "R2", "grace_days"), "two weeks", "rules.R2.grace_days"),
    (("rules", "R1", "severity"), "urgent", "rules.R1.severity"),
    (("rules", "R4", "area_per_person_m2"), 0, "rules.R4.area_per_person_m2"),
    (("defaults", "capacity_per_officer"), 0, "rules.defaults.capacity_per_officer"),
    (("defaults", "capacity"), 10, "rules.defaults.capacity: unknown key"),
    (("severity_weights", "critical"), "five", "rules.severity_weights.critical"),
    (("rules", "R8"), {"code": "x", "title": "x", "severity": "low"}, "unknown rule(s) R8"),
    (("extra",), 1, "rules.yaml: rules.extra: unknown key"),
])
def test_bad_values_raise_naming_the_key(doc, path, value, needle):
    bad = copy.deepcopy(doc)
    node = bad
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        parse_rules(bad)
    assert needle in str(err.value)


def test_missing_rule_and_missing_field(doc):
    bad = copy.deepcopy(doc)
    del bad["rules"]["R5"]
    with pytest.raises(ConfigError, match="missing rule"):
        parse_rules(bad)
    bad = copy.deepcopy(doc)
    del bad["rules"]["R3"]["title"]
    with pytest.raises(ConfigError, match=r"rules\.R3\.title: missing"):
        parse_rules(bad)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_rules(tmp_path / "nope.yaml")


def test_house_code_format_and_r6_keys():
    import pytest as _pytest

    from gridlake.config import ConfigError
    from gridlake.rules_config import load_rules, parse_rules

    rules = load_rules()
    assert rules.house_code_format.pattern == "^4403[0-9]{14}$" and rules.house_code_format.reject_id_numbers
    assert rules["R6"].candidates_top_k == 3 and rules["R6"].max_per_officer == 5 and rules["R1"].max_per_officer is None
    import yaml

    from gridlake.config import CONF_DIR

    doc = yaml.safe_load((CONF_DIR / "rules.yaml").read_text(encoding="utf-8"))
    for bad, where in (({"pattern": "4403[0-9]{14}"}, "anchored"), ({"pattern": "^([0-9]$"}, "regular expression"),
                       ({"reject_id_numbers": "yes"}, "reject_id_numbers: Input should be a valid boolean"), ({"format": "x"}, "unknown key")):
        with _pytest.raises(ConfigError, match=where):
            parse_rules({**doc, "house_code_format": bad})
    with _pytest.raises(ConfigError, match="rules.R6.max_per_officer"):
        parse_rules({**doc, "rules": {**doc["rules"], "R6": {**doc["rules"]["R6"], "max_per_officer": 0}}})
