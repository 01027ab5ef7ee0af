"""What a simulated officer finds on site for an unresolved-address case (rule R6).

The return form shows an R6 row only by its 问题编号 (the discrepancy id) and the address. The
officer on the ground finds which house the address really is; the simulator stands for that
officer, so it may look at the generator's planted truth, but it gets there the way the case
does: the lake's ``gold.discrepancies`` evidence of the discrepancy id (read with ``deltalake``,
no JVM) gives the evidence records, and ``truth/records.parquet`` (source, record_id ->
site_house_code: the house on the ground, also when a mistyped or nonexistent number made the text
unresolvable; empty when the text names no single house) gives their houses.

An address is the house that a strict majority of its evidence records truly are; otherwise
(truly unresolvable, or records that disagree) the officer finds no house to write, nor when that
house has been demolished (its current version in the lake's silver.housing).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gridlake.config import Settings

log = logging.getLogger(__name__)

ADDRESS_RULE = "R6"
Record = tuple[str, str]  # (source, record_id)


def case_evidence(table_path: str | Path, discrepancy_ids: Iterable[str] | None = None) -> dict[str, list[Record]]:
    """R6 discrepancy id -> its evidence records (source, record_id), from gold.discrepancies at ``table_path``.

    ``discrepancy_ids`` limits the answer to those cases (all R6 cases when None). A lake without the
    table gives an empty mapping (logged)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    wanted = None if discrepancy_ids is None else sorted(set(discrepancy_ids))
    if wanted is not None and not wanted:
        return {}
    try:
        dataset = DeltaTable(str(table_path)).to_pyarrow_dataset()
    except TableNotFoundError:
        log.warning("no gold.discrepancies at %s: the officers find no house for any address case", table_path)
        return {}
    import pyarrow.dataset as ds

    cond = ds.field("rule") == ADDRESS_RULE
    if wanted is not None:
        cond = cond & ds.field("discrepancy_id").isin(wanted)
    table = dataset.to_table(columns=["discrepancy_id", "evidence"], filter=cond)
    out: dict[str, list[Record]] = {}
    for did, evidence in zip(table.column("discrepancy_id").to_pylist(), table.column("evidence").to_pylist(),
                             strict=True):
        out[str(did)] = [(str(e["source"]), str(e["record_id"])) for e in (evidence or [])
                         if e and e.get("source") and e.get("record_id")]
    return out


def true_houses(records_path: str | Path, records: Iterable[Record]) -> dict[Record, str | None]:
    """(source, record_id) -> the house it truly is (None: truly no house), from the generator's records.parquet.

    A record delivered more than once counts once; one whose deliveries name different houses is None.
    Records missing from the truth are left out."""
    wanted = set(records)
    path = Path(records_path)
    if not wanted or not path.exists():
        if wanted:
            log.warning("no generator truth at %s: the officers find no house for any address case", path)
        return {}
    ids = pa.array(sorted({rid for _, rid in wanted}), type=pa.string())
    # site_house_code: the house on the ground, also for a text a wrong number made unresolvable (older
    # truth files lack it: then the house the text resolves to)
    column = "site_house_code" if "site_house_code" in pq.read_schema(path).names else "house_code"
    table = pq.read_table(path, columns=["source", "record_id", column])
    table = table.filter(pc.is_in(table.column("record_id"), value_set=ids))
    codes: dict[Record, set[str]] = {}
    for src, rid, code in zip(table.column("source").to_pylist(), table.column("record_id").to_pylist(),
                              table.column(column).to_pylist(), strict=True):
        key = (str(src), str(rid))
        if key in wanted:
            codes.setdefault(key, set()).add(str(code or "").strip())
    out: dict[Record, str | None] = {}
    for key, seen in codes.items():
        houses = seen - {""}
        out[key] = next(iter(houses)) if len(houses) == 1 and len(seen) == 1 else None
    return out


def site_house(evidence: Sequence[Record], truth: Mapping[Record, str | None]) -> str | None:
    """The house an address case's records truly are: held by a strict majority of them; else None.

    Ties between houses are impossible under a strict majority, so the answer does not depend on order."""
    if not evidence:
        return None
    counts = Counter(truth.get(rec) for rec in evidence)
    counts.pop(None, None)
    if not counts:
        return None
    house, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return house if 2 * n > len(evidence) else None


def demolished(table_path: str | Path, codes: Iterable[str]) -> set[str]:
    """Of ``codes``, the houses whose current version in silver.housing (at ``table_path``) is demolished.

    What the officer sees on site: a house that is gone is no house to code an address to. Without
    the table nothing is known to be demolished."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    wanted = sorted(set(codes))
    if not wanted:
        return set()
    try:
        dataset = DeltaTable(str(table_path)).to_pyarrow_dataset()
    except TableNotFoundError:
        log.warning("no silver.housing at %s: no house is known to be demolished", table_path)
        return set()
    import pyarrow.dataset as ds

    t = dataset.to_table(columns=["house_code", "status", "is_current"], filter=ds.field("house_code").isin(wanted))
    return {str(c) for c, st, cur in zip(t.column("house_code").to_pylist(), t.column("status").to_pylist(),
                                         t.column("is_current").to_pylist(), strict=True)
            if cur and st == "demolished"}


def address_findings(settings: Settings, discrepancy_ids: Iterable[str] | None = None) -> dict[str, str | None]:
    """R6 discrepancy id -> the house an officer finds on site (None: the address truly is no house, or
    its house has been demolished).

    Only cases present in the lake's gold.discrepancies are answered."""
    evidence = case_evidence(settings.table_path("gold", "discrepancies"), discrepancy_ids)
    if not evidence:
        return {}
    truth = true_houses(settings.truth / "records.parquet", (r for recs in evidence.values() for r in recs))
    found = {did: site_house(recs, truth) for did, recs in evidence.items()}
    gone = demolished(settings.table_path("silver", "housing"), (h for h in found.values() if h))
    found = {did: (None if h in gone else h) for did, h in found.items()}
    log.info("address cases: %d on the lists, %d with a house found on site", len(found),
             sum(1 for v in found.values() if v))
    return found
