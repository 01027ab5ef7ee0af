"""Pydantic configuration models: precedence, and errors that name file, key and expected type."""

from __future__ import annotations

import pickle

import pytest
from pydantic import ValidationError

from gridlake.config import ConfigError, Settings, load_settings
from gridlake.config_models import ConfigModel, config_error
from gridlake.rules_config import load_rules
from gridlake.sources import load_sources
from matching.spec import SpecError, spec_from_dict

CONF = "defaults:\n  spark:\n    shuffle_partitions: 4\n  retention:\n    vacuum_hours: {gold: 720}\n" \
       "profiles:\n  local:\n    spark:\n      shuffle_partitions: 8\n"


class _Inner(ConfigModel):
    size: int = 1


class _Outer(ConfigModel):
    inner: _Inner = _Inner()
    items: tuple[_Inner, ...] = ()


def test_env_overrides_a_nested_key_above_the_profile(tmp_path):
    conf = tmp_path / "g.yaml"
    conf.write_text(CONF, encoding="utf-8")
    assert load_settings("local", data_root=tmp_path, conf_file=conf, env={}).spark.shuffle_partitions == 8
    s = load_settings("local", data_root=tmp_path, conf_file=conf,
                      env={"GRIDLAKE_SPARK__SHUFFLE_PARTITIONS": "16", "GRIDLAKE_RETENTION__VACUUM_HOURS__GOLD": "48",
                           "GRIDLAKE_DATA": str(tmp_path / "ignored")})
    assert s.spark.shuffle_partitions == 16 and isinstance(s.spark.shuffle_partitions, int)
    assert s.retention.vacuum_hours_for("gold") == 48
    assert s.data_root == str(tmp_path)  # the explicit data root wins over GRIDLAKE_DATA


def test_settings_are_frozen_picklable_and_copied_with_model_copy(tmp_path):
    s = load_settings("local", data_root=tmp_path, env={})
    with pytest.raises(ValidationError):
        s.profile = "cluster"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(s)) == s
    t = s.model_copy(update={"data_root": str(tmp_path / "b")})
    assert isinstance(t, Settings) and t.exports == tmp_path / "b" / "exports" and s.data == tmp_path


def test_a_wrong_type_names_file_key_and_type_not_the_value(tmp_path):
    conf = tmp_path / "g.yaml"
    conf.write_text(CONF, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings("local", data_root=tmp_path, conf_file=conf, env={"GRIDLAKE_AIRFLOW__API_PORT": "secret-ish"})
    msg = str(err.value)
    assert str(conf) in msg and "airflow.api_port: Input should be a valid integer" in msg
    assert "secret-ish" not in msg


def test_an_unknown_key_is_named_with_its_path(tmp_path):
    conf = tmp_path / "g.yaml"
    conf.write_text(CONF + "    retention:\n      bronze_dayz: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"g\.yaml \(profile local.*\): retention\.bronze_dayz: unknown key"):
        load_settings("local", data_root=tmp_path, conf_file=conf, env={})


def test_config_error_paths_counts_and_error_type():
    with pytest.raises(ValidationError) as err:
        _Outer.model_validate({"inner": {"size": "x"}, "items": [{"size": 1}, {"sise": 2}]})
    exc = config_error(err.value, "f.yaml", "top")
    assert isinstance(exc, ConfigError)
    assert str(exc) == ("f.yaml: top.inner.size: Input should be a valid integer, unable to parse string as an "
                        "integer; top.items[1].sise: unknown key")
    with pytest.raises(ValidationError) as err:
        _Outer.model_validate({"items": [{"bad": i} for i in range(7)]})
    other = config_error(err.value, "f.yaml", cls=SpecError)
    assert isinstance(other, SpecError) and str(other).endswith("items[4].bad: unknown key; and 2 more")


def test_loaded_models_keep_their_public_attributes():
    rules = load_rules()
    assert rules["R4"].rule_id == "R4" and rules.max_window_days >= rules.defaults.window_days
    src = load_sources()["housing"]
    assert src.required[0] == src.key[0] and src.header_to_canonical
    spec = spec_from_dict({"name": "x", "blocking": [["a[:2]"]], "comparisons": [
        {"name": "a", "levels": [None, "exact", {"kind": "jaro_winkler", "threshold": 0.9}, "else"]}]})
    assert spec.columns == ["a"] and spec.comparisons[0].null_index == 0
    assert spec.comparisons[0].levels[2].label == "jaro_winkler>=0.9" and spec.blocking == (("a[:2]",),)
    assert hash(spec.comparisons[0]) == hash(spec.comparisons[0].model_copy())
