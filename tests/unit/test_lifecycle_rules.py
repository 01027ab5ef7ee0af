"""The lifecycle's pure rules, without Spark: needed versions, VACUUM hours, erasure matching, key versions."""

from __future__ import annotations

import datetime as dt

import pytest

from gridlake.errors import PrivacyError
from gridlake.lifecycle import retention
from gridlake.lifecycle.erase import ErasureError, compact, id_forms, mentions_any, read_id_file

PID = "440304199001011233"  # test value (valid checksum), born 1990: has a legacy 15-digit form
PIDX = "44030419850202103X"
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _m(date: str, started: dt.datetime, versions: dict[str, int]) -> dict:
    return {"run_date": date, "started_at": started.isoformat(), "table_versions": versions}


def test_needed_versions_keep_last_manifest_window_and_running_night():
    docs = [
        _m("2026-03-01", NOW - dt.timedelta(days=90), {"gold.d": 1, "silver.s": 1}),   # outside the window
        _m("2026-05-10", NOW - dt.timedelta(days=22), {"gold.d": 5, "silver.s": 4}),   # inside 30 days
        _m("2026-05-31", NOW - dt.timedelta(days=1), {"gold.d": 9, "silver.s": 7, "gold.new": 0}),
    ]
    assert retention.needed_versions(docs, NOW, 30) == {"gold.d": 5, "silver.s": 4, "gold.new": 0}
    assert retention.needed_versions(docs, NOW, 7) == {"gold.d": 9, "silver.s": 7, "gold.new": 0}
    # a night running now keeps its versions, whatever its age
    assert retention.needed_versions(docs, NOW, 7, running=["2026-03-01"])["gold.d"] == 1
    # only the newest manifest, however old, when nothing is inside the window
    assert retention.needed_versions(docs[:1], NOW, 7) == {"gold.d": 1, "silver.s": 1}
    assert retention.needed_versions([], NOW, 30) == {}


def test_vacuum_hours_never_shorter_than_the_needed_versions_age():
    assert retention.vacuum_hours(168, None, NOW) == 168
    assert retention.vacuum_hours(168, NOW - dt.timedelta(days=2), NOW) == 168
    assert retention.vacuum_hours(168, NOW - dt.timedelta(days=20, hours=3, minutes=5), NOW) == 20 * 24 + 4 + 1


def test_retention_conditions():
    from gridlake.config import RetentionConfig

    cfg = RetentionConfig(bronze_days=10, silver_history_days=20, quarantine_raw_days=5)
    today = dt.date(2026, 6, 1)
    assert retention.bronze_expired(today, cfg) == "_delivery_date < DATE'2026-05-22'"
    assert "valid_to < DATE'2026-05-12'" in retention.scd2_expired(today, cfg) and "NOT is_current" in \
        retention.scd2_expired(today, cfg)
    cond, sets = retention.quarantine_expired(today, cfg, ["source", "reason_code", "_raw_line", "business_key"])
    assert cond.startswith("_delivery_date < DATE'2026-05-27'") and set(sets) == {"`_raw_line`", "`business_key`"}
    assert "reason_code" not in cond and all(v == "NULL" for v in sets.values())


def test_erasure_matches_every_written_form_and_nothing_else():
    forms = id_forms(PID) | id_forms(PIDX)
    assert "440304900101123" in forms  # the legacy 15 digits
    for text in (PID, "44030419850202103x", "４４０３０４１９９００１０１１２３３", "4403 0419 9001 0112 33",
                 "440304-19900101-1233", '{"raw":"李四,440304900101123,沙头"}'):
        assert mentions_any(text, forms), text
    for text in ("110101199003071234", "440304199001011234", "", None, "44030419900101"):
        assert not mentions_any(text, forms), text
    assert compact("a b-c_Ｘ") == "ABCX"


def test_read_id_file_normalises_and_names_bad_lines_only(tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("# request 2026-001\n440304900101123\n44030419850202103x\n\n", encoding="utf-8")
    assert read_id_file(f) == sorted({PID, PIDX})
    f.write_text(f"{PID}\n123456789012345678\n", encoding="utf-8")
    with pytest.raises(ErasureError) as exc:
        read_id_file(f)
    assert "line(s) 2" in str(exc.value) and "123456789012345678" not in str(exc.value)


def test_a_retired_key_fails_closed_after_rotation(tmp_path, monkeypatch):
    from gridlake.config import load_settings
    from gridlake.privacy import key_fingerprint, load_key, write_key_registry

    settings = load_settings("local", data_root=tmp_path / "data")
    old, new = b"old-key-0123456789abcdef", b"new-key-0123456789abcdef"
    monkeypatch.setenv(settings.privacy.key_env, old.decode())
    assert load_key(settings) == old  # no registry yet: version 1, any key
    write_key_registry(settings, {"current_version": 2, "versions": [
        {"version": 1, "fingerprint": key_fingerprint(old)}, {"version": 2, "fingerprint": key_fingerprint(new)}]})
    with pytest.raises(PrivacyError) as exc:
        load_key(settings)
    assert "retired key version 1" in str(exc.value) and old.decode() not in str(exc.value)
    monkeypatch.setenv(settings.privacy.key_env, new.decode())
    assert load_key(settings) == new
    assert key_fingerprint(old) != key_fingerprint(new) and len(key_fingerprint(old)) == 16
