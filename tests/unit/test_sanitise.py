"""Item 3 and 7 of issue 17: error text leaves a stage without values; run ids never become paths.

Real errors, no Spark: openpyxl's IllegalCharacterError, Python's int() and the alert hook.
The ID number is made up here (checksum-valid, test-only), never written in a file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from gridlake.errors import GridlakeError
from gridlake.ids import check_digit
from gridlake.manifest import Manifest
from gridlake.runid import run_id_file_name, safe_run_id, validate_run_id
from gridlake.sanitise import SanitisingFilter, describe_exception, sanitise_text

FIRST17 = "32010619850704" + "351"
FAKE_ID = FIRST17 + check_digit(FIRST17)
NAME = "欧阳明华"
D = dt.date(2024, 5, 1)


def traces(text: str) -> list[str]:
    """Pieces of the planted values that must not survive (the ID, its parts, the name, the phone)."""
    pieces = [FAKE_ID, FAKE_ID[:10], FAKE_ID[-8:], NAME, "明华", "13812345678", "1234 5678", "87654321"]
    return [p for p in pieces if p in text]


def openpyxl_error() -> Exception:
    from openpyxl import Workbook

    ws = Workbook().active
    try:
        ws["A1"] = f"{NAME}\x01{FAKE_ID}"
    except Exception as exc:  # noqa: BLE001 - the real openpyxl error
        return exc
    raise AssertionError("openpyxl accepted a control character")


def test_openpyxl_illegal_character_error_keeps_only_its_template():
    exc = openpyxl_error()
    assert FAKE_ID in str(exc)  # the library quotes the value: the reason for the sanitiser
    text = describe_exception(exc)
    assert text.startswith("IllegalCharacterError: ") and "cannot be used in worksheets" in text
    assert traces(text) == []


@pytest.mark.parametrize("message", [
    f"[CAST_INVALID_INPUT] The value '{FAKE_ID}' of the type \"STRING\" cannot be cast to \"INT\" because it is malformed.",
    f"The value 'O'Brien {FAKE_ID}' of the type \"STRING\" cannot be cast to \"BIGINT\"",
    f"invalid literal for int() with base 10: '{NAME} {FAKE_ID}'",
    f"Failed to parse string: '{FAKE_ID.lower()}' as a scalar of type int64",
    f"row of {NAME}: call +86 138 1234 5678 / 025-87654321 / 13812345678 / ID {FAKE_ID[:15]}",
    f"“{NAME}” «{FAKE_ID}» `{NAME}` \"{NAME}\"",
])
def test_values_are_dropped_and_the_template_kept(message):
    out = sanitise_text(message)
    assert traces(out) == [], out
    assert sanitise_text(out) == out  # idempotent


def test_safe_parts_survive():
    out = sanitise_text('[CAST_INVALID_INPUT] The value \'1\' of the type "STRING" cannot be cast to "DECIMAL(10,2)". '
                        "Use `try_cast`. SQLSTATE: 22018 on 2024-05-01, 3 of 120 rows, column `house_code`")
    for kept in ("[CAST_INVALID_INPUT]", '"STRING"', '"DECIMAL(10,2)"', "`try_cast`", "SQLSTATE: 22018",
                 "2024-05-01", "3 of 120 rows", "`house_code`"):
        assert kept in out


def test_manifest_failure_has_no_value(settings):
    m = Manifest.open(settings, "test__san", D)
    try:
        int(f"{NAME}{FAKE_ID}")
    except ValueError as exc:
        m.record_failure("bronze", exc)
    m.record_failure("exports", openpyxl_error())
    m.record_files([{"source": "police_incidents", "sha256": "ab", "path": "x.csv",
                     "error": f"MALFORMED: value {FAKE_ID} in column id"}])
    text = m.path.read_text(encoding="utf-8")
    assert traces(text) == []
    doc = json.loads(text)
    assert [f["error"].split(":")[0] for f in doc["failures"]] == ["ValueError", "IllegalCharacterError"]


def test_log_filter_sanitises_message_args_and_traceback():
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(SanitisingFilter())
    lg = logging.getLogger("gridlake.test_sanitise")
    lg.addHandler(handler)
    try:
        lg.warning("cell %s rejected for %s", FAKE_ID, NAME)
        try:
            raise openpyxl_error()
        except Exception:  # noqa: BLE001
            lg.exception("export failed")
    finally:
        lg.removeHandler(handler)
    assert len(records) == 2 and "IllegalCharacterError" in records[1] and "Traceback" in records[1]
    assert traces("\n".join(records)) == []


def test_alert_file_has_no_value(settings):
    from gridlake.airflow_runtime import failure_record, write_alert_file

    record = failure_record({"exception": openpyxl_error(), "params": {"date": "2024-05-01"}})
    path = write_alert_file({**record, "run_id": "gridlake_nightly__2024-05-01"}, settings)
    # a hook fed an unsanitised record (another caller) still writes nothing raw
    write_alert_file({"run_id": "gridlake_nightly__2024-05-01", "error": f"ValueError: {FAKE_ID}"}, settings)
    text = path.read_text(encoding="utf-8")
    assert "IllegalCharacterError" in text and traces(text) == []


# --- item 7: run ids -----------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["..", "../x", "a/../../b", "/etc", "a/b", "", ".hidden", "a..b", "x" * 200,
                                 "night\x00", "名字"])
def test_bad_run_ids_are_refused(bad):
    with pytest.raises(GridlakeError, match="invalid run id"):
        validate_run_id(bad)


@pytest.mark.parametrize("good", ["manual__2024-05-01", "gridlake_nightly__2024-05-01", "demo__2024-05-01",
                                  "scheduled__2024-05-01T02:00:00+00:00", "test"])
def test_good_run_ids_pass(good):
    assert validate_run_id(good) == good and "/" not in safe_run_id(good)


def test_alert_file_name_of_any_id_stays_in_its_folder():
    for value in ("..", "../../etc/passwd", None, "a/b:c"):
        name = run_id_file_name(value)
        assert "/" not in name and ".." not in name and name


def test_run_id_dotdot_deletes_nothing(settings):
    """``gridlake run --run-id ..`` is refused before the lock, the key or Spark: the data root is intact."""
    from gridlake.cli import main

    root = settings.data
    (root / "lake" / "bronze").mkdir(parents=True)
    keep = root / "lake" / "bronze" / "keep.txt"
    keep.write_text("x", encoding="utf-8")
    before = sorted(str(p) for p in root.rglob("*"))
    for bad in ("..", "../..", "x/../.."):
        rc = main(["run", "--data", str(root), "--date", "2024-05-01", "--stages", "bronze", "--run-id", bad])
        assert rc == 1
    assert keep.read_text(encoding="utf-8") == "x"
    assert sorted(str(p) for p in root.rglob("*")) == before
