"""Issue 18 item 3: failure alerts through Airflow notifiers.

A real local SMTP server (aiosmtpd on 127.0.0.1) receives the mail of Airflow's ``SmtpNotifier``;
the alert file is written; neither holds the ID number planted in the exception text. The ID
number is made up here (checksum-valid, test-only), never written in a file.
"""

from __future__ import annotations

import datetime as dt
import email
import json
from email import policy
from types import SimpleNamespace

import pytest

from gridlake.alerts import (
    AlertFileNotifier,
    AlertMailNotifier,
    failure_notifiers,
    send_alert,
    source_deadlines,
)
from gridlake.config import ConfigError
from gridlake.ids import check_digit
from gridlake.notifications import AlertMailConfig, AlertsConfig, load_notifications
from tests.support.smtp import local_smtp

FIRST17 = "32010619850704" + "351"
FAKE_ID = FIRST17 + check_digit(FIRST17)
PHONE = "13812345678"


@pytest.fixture
def smtp(monkeypatch):
    with local_smtp(monkeypatch, "gridlake_smtp_alerts") as inbox:
        yield inbox


def _context(exc: Exception, dag_id: str = "gridlake_ingest_rentals", task_id: str = "ingest") -> dict:
    """What Airflow hands a task's on_failure_callback (the fields the alert reads)."""
    return {
        "task_instance": SimpleNamespace(task_id=task_id, dag_id=dag_id, try_number=3,
                                         log_url="http://127.0.0.1:8080/dags/x/runs/y/tasks/ingest"),
        "dag_run": SimpleNamespace(dag_id=dag_id, run_id="scheduled__2026-11-01T17:00:00+00:00",
                                   partition_key="2026-11-01", logical_date=None),
        "partition_key": "2026-11-01",
        "logical_date": None,
        "params": {"date": None},
        "exception": exc,
    }


def _failure() -> Exception:
    try:
        int(f"{FAKE_ID} {PHONE}")  # a value a stage choked on, quoted by Python
    except ValueError as inner:
        try:
            raise RuntimeError(f"spark-submit exited with 1: ValueError: bad tenants {FAKE_ID} ({PHONE})") from inner
        except RuntimeError as exc:
            return exc
    raise AssertionError("unreachable")


def _clean(text: str) -> None:
    for piece in (FAKE_ID, FAKE_ID[:12], FAKE_ID[-8:], PHONE):
        assert piece not in text, piece


def test_failure_mail_and_file_carry_the_error_class_not_the_id(settings, smtp, monkeypatch):
    monkeypatch.setenv("GRIDLAKE_DATA", str(settings.data))
    cfg = AlertsConfig(mail=AlertMailConfig(to=["oncall@example.org"], smtp_conn_id="gridlake_smtp_alerts",
                                            from_email="gridlake@localhost"))
    notifiers = failure_notifiers(cfg)
    assert [type(n) for n in notifiers] == [AlertFileNotifier, AlertMailNotifier]
    context = _context(_failure())
    for notifier in notifiers:
        notifier(context)  # how Airflow calls an on_failure_callback: render templates, then notify()

    path = settings.data / "alerts" / "gridlake_ingest_rentals__2026-11-01.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    record = doc["failures"][-1]
    assert record["night"] == "2026-11-01" and record["task_id"] == "ingest" and record["kind"] == "failure"
    assert record["run_id"] == "gridlake_ingest_rentals__2026-11-01"
    assert "spark-submit exited with 1" in record["error"]
    _clean(path.read_text(encoding="utf-8"))

    assert [tos for tos, _ in smtp.messages] == [["oncall@example.org"]]
    msg = email.message_from_bytes(smtp.messages[0][1], policy=policy.default)
    assert "gridlake_ingest_rentals.ingest" in msg["Subject"] and "2026-11-01" in msg["Subject"]
    body = msg.get_body(("html",)).get_content()
    assert "spark-submit exited with 1" in body and "gridlake_ingest_rentals__2026-11-01" in body
    _clean(msg.as_string())
    _clean(body)


def test_an_error_line_is_not_a_template(settings, smtp, monkeypatch):
    monkeypatch.setenv("GRIDLAKE_DATA", str(settings.data))
    notifier = AlertMailNotifier(to="oncall@example.org", smtp_conn_id="gridlake_smtp_alerts",
                                 from_email="gridlake@localhost")
    notifier(_context(RuntimeError("bad header {{ 7 * 191 }} in file"), task_id="landed_files"))
    body = email.message_from_bytes(smtp.messages[0][1], policy=policy.default).get_body(("html",)).get_content()
    assert "{{ 7 * 191 }}" in body and "1337" not in body


def test_dag_level_failure_and_a_missed_deadline(settings, monkeypatch):
    monkeypatch.setenv("GRIDLAKE_DATA", str(settings.data))
    notifier = AlertFileNotifier()
    # DAG-level callback: no task instance, a reason instead of an exception
    notifier({"dag_run": SimpleNamespace(dag_id="gridlake_nightly", run_id="asset_triggered__x",
                                         partition_key="2026-11-02", logical_date=None),
              "reason": "task_failure", "params": {}})
    # a deadline callback (triggerer): the DAG run arrives as JSON, with the deadline
    late = AlertFileNotifier(kind="late")
    late({"dag_run": {"dag_id": "gridlake_ingest_police_incidents", "run_id": "scheduled__y",
                      "partition_key": "2026-11-02", "logical_date": None},
          "deadline": {"id": "d1", "deadline_time": dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)}})
    # under dag.test() a DAG-level callback's context holds the scheduler's DAG, without template env
    notifier({"dag_run": SimpleNamespace(dag_id="gridlake_nightly", run_id="manual__z", partition_key=None,
                                         logical_date=dt.datetime(2026, 11, 1, 16, 0, tzinfo=dt.UTC)),
              "dag": SimpleNamespace(dag_id="gridlake_nightly"), "reason": "task_failure", "params": {}})
    nightly = json.loads((settings.data / "alerts" / "gridlake_nightly__2026-11-02.json").read_text())
    assert len(nightly["failures"]) == 2
    assert nightly["failures"][0]["error"] == "task_failure" and nightly["failures"][0]["task_id"] is None
    late_doc = json.loads((settings.data / "alerts" / "gridlake_ingest_police_incidents__2026-11-02.json").read_text())
    rec = late_doc["failures"][0]
    assert rec["kind"] == "late" and rec["error"].startswith("late: gridlake_ingest_police_incidents")
    assert "2026-11-02T18:00" in rec["error"]


def test_send_alert_outside_airflow_and_a_broken_channel(settings, monkeypatch):
    cfg = AlertsConfig(mail=AlertMailConfig(to=["oncall@example.org"], smtp_conn_id="gridlake_no_such_conn"))
    send_alert({"run_id": "gridlake_nightly__2026-11-03", "night": "2026-11-03", "task_id": "privacy_gate:gold.x",
                "error": f"privacy gate: {FAKE_ID}"}, settings, cfg)  # the mail fails: logged, not raised
    text = (settings.data / "alerts" / "gridlake_nightly__2026-11-03.json").read_text(encoding="utf-8")
    assert "privacy_gate:gold.x" in text
    _clean(text)


def test_alerts_config_is_typed_and_drives_the_deadlines(tmp_path):
    assert load_notifications().alerts.file is True  # the repo's conf
    deadlines = source_deadlines(AlertsConfig(source_late_after_minutes=45,
                                              mail=AlertMailConfig(to=["oncall@example.org"])))
    assert [d.interval for d in deadlines] == [dt.timedelta(minutes=45)] * 2
    assert [d.callback.path for d in deadlines] == ["gridlake.alerts.AlertFileNotifier",
                                                    "gridlake.alerts.AlertMailNotifier"]
    assert deadlines[1].callback.kwargs["to"] == ["oncall@example.org"]
    assert failure_notifiers(AlertsConfig(file=False)) == []
    bad = tmp_path / "notifications.yaml"
    bad.write_text("alerts:\n  mail:\n    to: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"notifications\.yaml: notifications\.alerts\.mail\.to"):
        load_notifications(bad)
    bad.write_text("alerts:\n  hooks: gridlake.x:y\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="alerts.hooks"):
        load_notifications(bad)


def test_send_alert_keeps_the_file_when_the_config_is_broken(settings, monkeypatch, tmp_path):
    import gridlake.alerts as alerts

    def broken():
        raise ConfigError("notifications.yaml: notifications.alerts.file: bad")

    monkeypatch.setattr(alerts, "load_notifications", broken)
    send_alert({"run_id": "gridlake_nightly__2026-11-04", "night": "2026-11-04", "error": "privacy gate"}, settings)
    assert (settings.data / "alerts" / "gridlake_nightly__2026-11-04.json").exists()
