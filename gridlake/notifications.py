"""The nightly message to each street supervisor, sent through an Airflow notifier (issue 19 item 3).

``conf/notifications.yaml`` names the notifier class (Airflow's ``SmtpNotifier`` by default; any
``BaseNotifier`` taking ``to``, ``subject`` and ``html_content`` plugs in), its options and the
street supervisors' addresses. The message holds counts and links to the supervisors' lists only:
no name, ID number, phone, address or house code ever goes into it (:func:`street_message`).
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridlake.config import CONF_DIR, ConfigError
from gridlake.config_models import config_error

log = logging.getLogger(__name__)


class AlertMailConfig(BaseModel):
    """``alerts.mail``: failure and lateness alerts by mail through Airflow's ``SmtpNotifier``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: list[str] = Field(min_length=1)
    smtp_conn_id: str = "gridlake_smtp"
    from_email: str | None = None


class AlertsConfig(BaseModel):
    """``alerts``: which notifiers run when a gridlake task or DAG run fails or a source is late.

    ``file`` (on by default) keeps the record in ``<data>/alerts/<run_id>.json``; ``mail`` adds a
    mail to the on-call address(es); ``source_late_after_minutes`` is the ingestion DAGs' deadline
    (from the moment their run was queued).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: bool = True
    mail: AlertMailConfig | None = None
    source_late_after_minutes: int = Field(default=60, ge=1, le=24 * 60)


class NotificationsConfig(BaseModel):
    """``conf/notifications.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notifier: str = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
    options: dict[str, Any] = Field(default_factory=dict)
    links_base: str = ""
    street_supervisors: dict[str, str] = Field(default_factory=dict)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)


def load_notifications(path: str | os.PathLike[str] | None = None) -> NotificationsConfig:
    """Load and validate ``conf/notifications.yaml`` (or ``path``)."""
    p = Path(path) if path else CONF_DIR / "notifications.yaml"
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return NotificationsConfig.model_validate(doc)
    except FileNotFoundError:
        raise ConfigError(f"notifications file not found: {p}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise config_error(exc, str(p), "notifications") from None


def street_message(street: str, counts: Mapping[str, int], files: list[str], run_date: dt.date,
                   links_base: str) -> tuple[str, str]:
    """``(subject, html)`` for one street: counts and links to its supervisors' lists, nothing else."""
    n = {k: int(counts.get(k, 0)) for k in ("overdue", "community", "street", "reopened")}
    subject = f"[gridlake] {street} {run_date.isoformat()} 逾期 {n['overdue']} 件, 升级街道 {n['street']} 件, 重办 {n['reopened']} 件"
    base = links_base.rstrip("/")
    items = "".join(
        f'<li><a href="{html.escape(f"{base}/{run_date.isoformat()}/{f}")}">{html.escape(f)}</a></li>' for f in files)
    body = (f"<p>{html.escape(street)} {run_date.isoformat()} 夜间核查汇总</p><ul>"
            f"<li>逾期未核查: {n['overdue']}</li><li>催办社区: {n['community']}</li>"
            f"<li>升级街道: {n['street']}</li><li>重办: {n['reopened']}</li></ul>"
            f"<p>清单 (已脱敏):</p><ul>{items or '<li>无</li>'}</ul>")
    return subject, body


def notifier_class(dotted: str) -> Callable[..., Any]:
    """The notifier class named ``module.Class``."""
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ConfigError(f"notifications.notifier: cannot import {dotted!r}") from None


def notify_streets(summary: Mapping[str, Any], run_date: dt.date, cfg: NotificationsConfig | None = None,
                   factory: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Send each street supervisor the night's message; return what was sent and what failed.

    ``summary`` is the exports stage's ``supervisors`` stats (``streets`` counts and ``files``). A
    street without an address is skipped; a failed send is recorded (exception class only) and the
    other streets are still notified.
    """
    cfg = cfg or load_notifications()
    factory = factory or notifier_class(cfg.notifier)
    files = list(summary.get("files") or [])
    sent, failed, skipped = [], [], []
    from gridlake.cells import safe_stem

    for street, counts in sorted((summary.get("streets") or {}).items()):
        to = cfg.street_supervisors.get(street)
        if not to:
            skipped.append(street)
            continue
        stem = safe_stem(street, "未知街道")
        mine = [f for f in files if f"/{stem}/" in f"/{f}" or f.endswith(f"/{stem}.xlsx")]
        subject, body = street_message(street, counts, mine, run_date, cfg.links_base)
        try:
            factory(to=to, subject=subject, html_content=body, **cfg.options).notify({})
            sent.append(street)
        except Exception as exc:  # noqa: BLE001 - one street's mail never stops the others
            failed.append({"street": street, "error": type(exc).__name__})
            log.error("notification to the supervisor of %s failed (%s)", street, type(exc).__name__)
    return {"sent": sent, "failed": failed, "skipped": skipped}
