"""``gridlake explain <discrepancy_id>``: the whole chain of one case for an auditor, pseudonymised (issue 19 item 6).

Shown: the rule and its parameters (``conf/rules.yaml``), every evidence record (source, record
id, date, department) with its match explanation (gold.house_resolution), the priority's factors,
the lifecycle history, each verification (id, date, outcome, officer work id, corrected house
code), the escalations and any alias the case produced. Persons appear only as their pseudonym and
masked values; no name, ID number, phone, free-text note or person's address is read into it.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import TYPE_CHECKING, Any

from gridlake.errors import GridlakeError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from gridlake.config import Settings

log = logging.getLogger(__name__)

DEPARTMENTS = {"police_incidents": "公安", "mediation_cases": "调解", "safety_inspections": "安全生产",
               "family_planning": "计生", "rentals": "租赁登记", "declarations": "自主申报", "housing": "房屋登记"}
RECORD_ID = {"declarations": "declaration_id", "rentals": "rental_id", "police_incidents": "incident_id",
             "mediation_cases": "case_id", "safety_inspections": "inspection_id", "family_planning": "record_id",
             "housing": "house_code"}


def priority_factors(row: dict[str, Any], weights: dict[str, float], half_life: int) -> dict[str, Any]:
    """The factors of the stored priority (jobs.gold.discrepancies.priority), recomputed for display."""
    weight = float(weights.get(row["severity"], 0.0))
    corr = 1.0 + 0.5 * (max(int(row.get("corroborating_sources") or 1), 1) - 1)
    last_ev, evaluated = row.get("last_evidence_date"), row.get("last_evaluated")
    age = max((evaluated - last_ev).days, 0) if last_ev and evaluated else None
    recency = 0.5 ** (age / half_life) if age is not None else 1.0
    esc = 1.5 if row.get("status") == "escalated" else 1.0
    conf = float(row.get("match_confidence") or 0.0)
    return {"severity_weight": weight, "corroboration": corr, "days_since_evidence": age,
            "recency": round(recency, 6), "match_confidence": conf, "escalation": esc,
            "product": round(weight * corr * recency * conf * esc, 6), "stored_priority": row.get("priority")}


def _date_of(spark: SparkSession, settings: Settings, source: str, ids: list[str]) -> dict[str, str]:
    """record id -> its first date/timestamp column's value (dates only leave silver)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, TimestampType

    from gridlake import io

    if source not in RECORD_ID or not io.table_exists(spark, settings, "silver", source):
        return {}
    df = io.read_table(spark, settings, "silver", source)
    key = RECORD_ID[source]
    dates = [f.name for f in df.schema.fields if isinstance(f.dataType, (DateType, TimestampType))
             and not f.name.startswith("_") and f.name not in ("valid_from", "valid_to")]
    if not dates or key not in df.columns:
        return {}
    rows = df.where(F.col(key).isin(ids)).select(key, dates[0]).collect()
    return {str(r[0]): str(r[1]) for r in rows}


def gather(spark: SparkSession, settings: Settings, discrepancy_id: str) -> dict[str, Any]:
    """The chain of ``discrepancy_id`` as a JSON-able dict; GridlakeError when it is unknown."""
    from pyspark.sql import functions as F

    from gridlake import io
    from gridlake.rules_config import load_rules

    if not io.table_exists(spark, settings, "gold", "discrepancies"):
        raise GridlakeError("gold.discrepancies does not exist yet")
    rows = io.read_table(spark, settings, "gold", "discrepancies").where(
        F.col("discrepancy_id") == discrepancy_id).collect()
    if not rows:
        raise GridlakeError(f"no discrepancy {discrepancy_id!r}")
    d = rows[0].asDict(recursive=True)
    rules = load_rules()
    rule = rules[d["rule"]].model_dump()
    evidence = [dict(e) for e in d.get("evidence") or []]
    by_source: dict[str, list[str]] = {}
    for e in evidence:
        by_source.setdefault(e["source"], []).append(e["record_id"])
    dates = {(s, rid): v for s, ids in by_source.items() for rid, v in _date_of(spark, settings, s, ids).items()}
    matches: dict[tuple[str, str], dict[str, Any]] = {}
    if io.table_exists(spark, settings, "gold", "house_resolution"):
        hr = io.read_table(spark, settings, "gold", "house_resolution")
        cond = F.lit(False)
        for s, ids in by_source.items():
            cond = cond | ((F.col("source") == s) & F.col("record_id").isin(ids))
        for r in hr.where(cond).select("source", "record_id", "house_code", "score", "method", "explanation").collect():
            matches[(r["source"], r["record_id"])] = {"house_code": r["house_code"], "score": r["score"],
                                                      "method": r["method"], "explanation": r["explanation"]}
    for e in evidence:
        k = (e["source"], e["record_id"])
        e.update(department=DEPARTMENTS.get(e["source"], e.get("category")), date=dates.get(k), match=matches.get(k))
    verifications = []
    if io.table_exists(spark, settings, "silver", "verifications"):
        v = io.read_table(spark, settings, "silver", "verifications").where(F.col("discrepancy_id") == discrepancy_id)
        cols = [c for c in ("verification_id", "checked_at", "outcome", "officer_id", "new_house_code") if c in v.columns]
        verifications = [{k: (str(x) if x is not None else None) for k, x in r.asDict().items()}
                         for r in v.select(*cols).orderBy("checked_at").collect()]
    escalations = []
    if io.table_exists(spark, settings, "gold", "escalations"):
        e = io.read_table(spark, settings, "gold", "escalations").where(F.col("discrepancy_id") == discrepancy_id)
        escalations = [{"run_date": str(r["run_date"]), "level": r["level"], "overdue_days": r["overdue_days"],
                        "deadline": str(r["deadline"]), "reopened": r["reopened"]}
                       for r in e.orderBy("run_date").collect()]
    aliases = []
    if io.table_exists(spark, settings, "gold", "address_aliases"):
        a = io.read_table(spark, settings, "gold", "address_aliases").where(F.col("discrepancy_id") == discrepancy_id)
        aliases = [{"house_code": r["house_code"], "verification_id": r["verification_id"], "status": r["status"],
                    "created_on": str(r["created_on"]), "withdrawn_on": str(r["withdrawn_on"] or "")}
                   for r in a.collect()]  # the address itself is not shown (it may be a person's)
    return {
        "discrepancy_id": d["discrepancy_id"],
        "rule": {"id": d["rule"], "code": d["rule_code"], "severity": d["severity"], "parameters": rule},
        "house_code": d.get("house_code"), "grid_id": d.get("grid_id"), "community": d.get("community"),
        "street": d.get("street"),
        "person": {"pseudonym": d.get("person_key"), "masked_id": d.get("masked_id"),
                   "masked_name": d.get("masked_name"), "masked_phone": d.get("masked_phone")},
        "reason_codes": list(d.get("reason_codes") or []),
        "evidence": evidence,
        "priority": priority_factors(d, rules.severity_weights, rules.defaults.recency_half_life_days),
        "status": d["status"], "due_date": str(d["due_date"]),
        "history": [{"date": str(h["date"]), "status": h["status"], "by": h["by"]} for h in d.get("status_history") or []],
        "verifications": verifications, "escalations": escalations, "aliases": aliases,
    }


def render_text(doc: dict[str, Any]) -> str:
    """A plain-text rendering of :func:`gather`'s dict for a terminal."""
    r = doc["rule"]
    lines = [f"问题 {doc['discrepancy_id']}  规则 {r['id']} {r['code']} ({r['severity']})  状态 {doc['status']}  "
             f"截止 {doc['due_date']}",
             f"房屋 {doc.get('house_code') or '-'}  网格 {doc.get('grid_id') or '-'}  社区 {doc.get('community') or '-'}",
             "参数: " + ", ".join(f"{k}={v}" for k, v in r["parameters"].items() if k not in ("description",)),
             "原因: " + ", ".join(doc["reason_codes"])]
    p = doc["person"]
    if p.get("pseudonym"):
        lines.append(f"人员: {p['pseudonym']} {p.get('masked_name') or ''} {p.get('masked_id') or ''}")
    lines.append("证据:")
    for e in doc["evidence"]:
        m = e.get("match") or {}
        lines.append(f"  {e['department']} {e['source']}:{e['record_id']} {e.get('date') or ''} -> "
                     f"{m.get('house_code') or '未匹配'} [{m.get('method') or '-'} {m.get('score') or ''}] "
                     f"{m.get('explanation') or ''}")
    f = doc["priority"]
    lines.append(f"优先级 {f['stored_priority']} = 严重度 {f['severity_weight']} x 佐证 {f['corroboration']} x 时效 "
                 f"{f['recency']} ({f['days_since_evidence']} 天) x 匹配置信度 {f['match_confidence']} x 升级 {f['escalation']}")
    lines.append("历史: " + " -> ".join(f"{h['date']} {h['status']} ({h['by']})" for h in doc["history"]))
    for v in doc["verifications"]:
        lines.append(f"核查: {v.get('verification_id')} {v.get('checked_at')} {v.get('outcome')} {v.get('officer_id') or ''}"
                     + (f" 核查后房屋编码 {v['new_house_code']}" if v.get("new_house_code") else ""))
    for e in doc["escalations"]:
        lines.append(f"督办: {e['run_date']} {e['level'] or '-'} 逾期 {e['overdue_days']} 天" + (" 重办" if e["reopened"] else ""))
    for a in doc["aliases"]:
        lines.append(f"地址别名: -> {a['house_code']} ({a['verification_id']}, {a['status']})")
    return "\n".join(lines)


def cmd_explain(args: argparse.Namespace) -> int:
    """``gridlake explain <discrepancy_id> [--json]``."""
    from gridlake.config import load_settings
    from gridlake.spark import get_spark

    settings = load_settings(args.profile, args.data)
    spark = get_spark(settings, app_name="gridlake-explain")
    doc = gather(spark, settings, args.discrepancy_id)
    text = json.dumps(doc, ensure_ascii=False, indent=2, default=str) if args.json else render_text(doc)
    print(text)  # noqa: T201 - the command's output
    return 0
