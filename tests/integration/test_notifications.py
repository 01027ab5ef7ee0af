"""Issue 19 item 3: each street supervisor gets the night's counts and links through Airflow's SmtpNotifier,
received by a real local SMTP server (aiosmtpd on 127.0.0.1); no personal data in any message."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest

from gridlake.notifications import NotificationsConfig, notify_streets
from tests.support.smtp import local_smtp

NIGHT = dt.date(2026, 11, 5)


@pytest.fixture
def smtp(monkeypatch):
    with local_smtp(monkeypatch, "gridlake_smtp_test") as inbox:
        yield inbox


SUMMARY = {
    "files": ["supervisors/community/沙头街道/上沙社区.xlsx", "supervisors/street/沙头街道.xlsx",
              "supervisors/community/香蜜湖街道/香梅社区.xlsx"],
    "streets": {"沙头街道": {"overdue": 5, "community": 3, "street": 2, "reopened": 1},
                "香蜜湖街道": {"overdue": 1, "community": 1, "street": 0, "reopened": 0},
                "园岭街道": {"overdue": 0, "community": 0, "street": 0, "reopened": 2}},
}


def test_each_street_supervisor_gets_counts_and_links(smtp):
    cfg = NotificationsConfig(options={"smtp_conn_id": "gridlake_smtp_test", "from_email": "gridlake@localhost"},
                              links_base="https://grid.example/exports",
                              street_supervisors={"沙头街道": "shatou@example.org", "香蜜湖街道": "xmh@example.org"})
    out = notify_streets(SUMMARY, NIGHT, cfg)
    assert out == {"sent": ["沙头街道", "香蜜湖街道"], "failed": [], "skipped": ["园岭街道"]}
    assert sorted(to for tos, _ in smtp.messages for to in tos) == ["shatou@example.org", "xmh@example.org"]
    by_to = {tos[0]: email.message_from_bytes(raw, policy=policy.default) for tos, raw in smtp.messages}
    shatou = by_to["shatou@example.org"]
    assert "逾期 5 件" in shatou["Subject"] and "重办 1 件" in shatou["Subject"]
    body = shatou.get_body(("html",)).get_content()
    assert "https://grid.example/exports/2026-11-05/supervisors/street/沙头街道.xlsx" in body
    assert "香梅社区" not in body  # another street's list is not linked
    for _, raw in smtp.messages:
        text = email.message_from_bytes(raw, policy=policy.default).get_body(("html",)).get_content()
        assert "440304" not in text and "*" not in text  # no house codes, no masked values either


def test_one_failing_street_does_not_stop_the_others(smtp):
    cfg = NotificationsConfig(options={"smtp_conn_id": "gridlake_smtp_test", "from_email": "gridlake@localhost"},
                              street_supervisors={"沙头街道": "shatou@example.org", "香蜜湖街道": "xmh@example.org"})
    calls = []

    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    def factory(**kw):
        calls.append(kw["to"])
        if kw["to"] == "shatou@example.org":
            kw["smtp_conn_id"] = "no_such_connection_anywhere"
        return SmtpNotifier(**kw)

    out = notify_streets(SUMMARY, NIGHT, cfg, factory=factory)
    assert out["sent"] == ["香蜜湖街道"] and [f["street"] for f in out["failed"]] == ["沙头街道"]
    assert [tos for tos, _ in smtp.messages] == [["xmh@example.org"]]
