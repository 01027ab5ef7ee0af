"""Failure and lateness alerts through Airflow notifiers (issue 18 item 3).

Every gridlake task and DAG run gets, as ``on_failure_callback``, the notifiers that the
``alerts`` section of ``conf/notifications.yaml`` switches on (:func:`failure_notifiers`):

* :class:`AlertFileNotifier` (on by default) adds the record to ``<data>/alerts/<run_id>.json``;
* :class:`AlertMailNotifier` (``alerts.mail``) is Airflow's ``SmtpNotifier`` sending the same text.

The ingestion DAGs carry one ``DeadlineAlert`` per notifier (:func:`source_deadlines`): a source
whose run has not finished ``alerts.source_late_after_minutes`` after it was queued is late.

What an alert says is :func:`failure_record`: DAG, run, task, night, try, the
sanitised error line and the log URL; never a delivered value (the exception text goes through
:func:`gridlake.sanitise.describe_exception`, and the file and mail sanitise it once more).
The record's text is set after Airflow rendered the notifier's templates, so an error line is never
read as a Jinja template.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import BaseNotifier

from gridlake.airflow_runtime import failure_record, write_alert_file  # noqa: F401 - the alert record and file
from gridlake.config import Settings, load_settings
from gridlake.notifications import AlertsConfig, load_notifications
from gridlake.sanitise import sanitise_text

log = logging.getLogger(__name__)

FAILURE = "failure"
LATE = "late"
KINDS = (FAILURE, LATE)


def alert_record(context: Mapping[str, Any], kind: str = FAILURE) -> dict[str, Any]:
    """The sanitised record of one alert; for ``late`` the error line says which deadline was missed."""
    if kind not in KINDS:
        raise ValueError(f"alert kind must be one of {KINDS}, not {kind!r}")
    record = {**failure_record(context), "kind": kind}
    if kind == LATE:
        deadline = context.get("deadline") or {}
        due = deadline.get("deadline_time") if isinstance(deadline, Mapping) else None
        due_s = due.isoformat(timespec="minutes") if isinstance(due, dt.datetime) else str(due or "its deadline")
        record["error"] = (f"late: {record.get('dag_id') or 'a gridlake DAG'} has not finished the night "
                           f"{record.get('night') or '?'} by {due_s}")
    record["error"] = sanitise_text(str(record.get("error") or ""))
    return record


def alert_message(record: Mapping[str, Any]) -> tuple[str, str]:
    """``(subject, html)`` of an alert mail: the record's fields, HTML-escaped, nothing else."""
    what = "late" if record.get("kind") == LATE else "failed"
    subject = sanitise_text(f"[gridlake] {what}: {record.get('dag_id') or '?'}"
                            f"{'.' + str(record['task_id']) if record.get('task_id') else ''} night {record.get('night') or '?'}")
    rows = [(k, record.get(k)) for k in ("dag_id", "task_id", "night", "run_id", "airflow_run_id", "try_number",
                                         "error", "log_url", "at")]
    body = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(sanitise_text(str(v)))}</td></tr>"
                   for k, v in rows if v not in (None, ""))
    return subject, f"<p>gridlake alert ({what})</p><table>{body}</table>"


class RenderWithoutDagMixin:
    """Render a notifier's templates in a sandboxed environment when the context's DAG cannot give one.

    A DAG-level callback under ``dag.test()`` gets the scheduler's ``SerializedDAG``, which has no
    ``get_template_env``; the alert must still go out.
    """

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """As ``BaseNotifier.render_template_fields``, with a sandboxed environment as fallback."""
        dag = context.get("dag")
        if jinja_env is None and dag is not None and not hasattr(dag, "get_template_env"):
            jinja_env = self.get_template_env()  # type: ignore[attr-defined]
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]


class AlertFileNotifier(RenderWithoutDagMixin, BaseNotifier):
    """Keep the alert record in ``<data>/alerts/<run_id>.json`` (one file per DAG and night)."""

    def __init__(self, kind: str = FAILURE, context: Any = None) -> None:
        super().__init__(context=context)
        if kind not in KINDS:
            raise ValueError(f"alert kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind

    def notify(self, context: Any) -> None:
        """Write the record (sync: task and DAG failure callbacks)."""
        path = write_alert_file(alert_record(context, self.kind), load_settings())
        log.info("gridlake %s alert written to %s", self.kind, path)
        self.last_path: Path = path

    async def async_notify(self, context: Any) -> None:
        """Write the record (async: deadline callbacks in the triggerer)."""
        await asyncio.to_thread(self.notify, context)


class AlertMailNotifier(RenderWithoutDagMixin, SmtpNotifier):
    """Airflow's ``SmtpNotifier`` with the alert record as subject and body."""

    def __init__(self, to: str | list[str], kind: str = FAILURE, smtp_conn_id: str | None = None,
                 from_email: str | None = None, context: Any = None) -> None:
        super().__init__(to=to, from_email=from_email, smtp_conn_id=smtp_conn_id, context=context)
        if kind not in KINDS:
            raise ValueError(f"alert kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind

    def notify(self, context: Any) -> None:
        """Send the record by mail; subject and body are set after template rendering."""
        self.subject, self.html_content = alert_message(alert_record(context, self.kind))
        super().notify(context)

    async def async_notify(self, context: Any) -> None:
        """Send the record by mail from the triggerer (the sync client in a thread)."""
        await asyncio.to_thread(self.notify, context)


def alerts_config(cfg: AlertsConfig | None = None) -> AlertsConfig:
    """``alerts`` of ``conf/notifications.yaml`` (validated; a wrong key fails the DAG import)."""
    return cfg if cfg is not None else load_notifications().alerts


def failure_notifiers(cfg: AlertsConfig | None = None) -> list[BaseNotifier]:
    """The ``on_failure_callback`` list of every gridlake task and DAG run."""
    cfg = alerts_config(cfg)
    out: list[BaseNotifier] = []
    if cfg.file:
        out.append(AlertFileNotifier())
    if cfg.mail is not None:
        out.append(AlertMailNotifier(to=list(cfg.mail.to), smtp_conn_id=cfg.mail.smtp_conn_id,
                                     from_email=cfg.mail.from_email))
    return out


def source_deadlines(cfg: AlertsConfig | None = None) -> list[Any]:
    """The ingestion DAGs' ``deadline=``: one ``DeadlineAlert`` per alert channel, queued time + the allowance."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    cfg = alerts_config(cfg)
    interval = dt.timedelta(minutes=cfg.source_late_after_minutes)
    callbacks: dict[str, Any] = {}
    if cfg.file:
        callbacks["file"] = AsyncCallback(AlertFileNotifier, kwargs={"kind": LATE})
    if cfg.mail is not None:
        callbacks["mail"] = AsyncCallback(AlertMailNotifier, kwargs={
            "kind": LATE, "to": list(cfg.mail.to), "smtp_conn_id": cfg.mail.smtp_conn_id,
            "from_email": cfg.mail.from_email})
    return [DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=interval, callback=cb,
                          name=f"source late ({channel})") for channel, cb in callbacks.items()]


def send_alert(record: Mapping[str, Any], settings: Settings | None = None, cfg: AlertsConfig | None = None) -> None:
    """Send a record built outside an Airflow callback (the privacy gate) through the same channels.

    Never raises: a broken channel is logged (its exception class) and the others still run.
    """
    try:
        cfg = alerts_config(cfg)
    except Exception as exc:  # noqa: BLE001 - a broken config must not swallow the alert: keep the file
        log.error("alerts config unreadable (%s); writing the alert file only", type(exc).__name__)
        cfg = AlertsConfig()
    rec = {**record, "error": sanitise_text(str(record.get("error") or ""))}
    if cfg.file:
        try:
            write_alert_file(rec, settings or load_settings())
        except Exception as exc:  # noqa: BLE001 - the caller's verdict stands even if one channel fails
            log.error("alert file could not be written (%s)", type(exc).__name__)
    if cfg.mail is not None:
        subject, body = alert_message(rec)
        try:  # notify() directly: nothing is rendered as a template
            SmtpNotifier(to=list(cfg.mail.to), from_email=cfg.mail.from_email, smtp_conn_id=cfg.mail.smtp_conn_id,
                         subject=subject, html_content=body).notify({})
        except Exception as exc:  # noqa: BLE001
            log.error("alert mail could not be sent (%s)", type(exc).__name__)
