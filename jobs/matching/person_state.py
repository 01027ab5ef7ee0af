"""The person linkage's saved model and per-mention state between nights (``gold._person_link_model``,
``gold._person_link_state``), read and written through :mod:`gridlake.io`.

A night links incrementally (:mod:`matching.person_incremental`) only when everything it reuses is the
last linkage's: the model row's fingerprint is this spec's and this code's, and gold.person_resolution and
the state table are still at the versions the model row names (an erasure or any other write to either
makes the next night link in full, with the saved model; a changed spec or ``matching/`` code, or
``--retrain-matching``, trains a new one). The previous links are read back from gold.person_resolution.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from schemas.gold import PERSON_LINK_MODEL, PERSON_RESOLUTION, person_link_state

if TYPE_CHECKING:
    import pyarrow as pa

    from gridlake.context import RunContext
    from matching.person_incremental import Linkage, Previous
    from matching.scoring import FSModel
    from matching.spec import LinkageSpec

log = logging.getLogger(__name__)

STATE_TABLE = "_person_link_state"
MODEL_TABLE = "_person_link_model"
#: the matching modules whose code decides a person linkage
DECIDING_MODULES = ("person_link.py", "person_bearer.py", "person_incremental.py", "engine.py", "compare.py",
                    "scoring.py", "blocking.py", "codes.py")
#: gold.person_resolution's method -> what the scored links explained on the mention before the sole-bearer pass
LINKED = {"id_exact": "id", "corroborated": "score"}


def fingerprint(spec: LinkageSpec) -> str:
    """The spec's deciding fields and the code of :data:`DECIDING_MODULES`."""
    from matching.spec import code_fingerprint

    return code_fingerprint(spec, DECIDING_MODULES)


def load(ctx: RunContext, spec: LinkageSpec, spec_print: str
         ) -> tuple[FSModel | None, Previous | None, str, pa.Table | None, int | None]:
    """The saved model (None: train one), the previous linkage (None: link in full), why not incremental,
    gold.person_resolution as read for the previous linkage (a ``pyarrow`` table of every column; None when not
    read: the night's changes are then told from the table read afresh, :func:`jobs.matching.person_publish.publish`)
    and the version it was read at."""
    from gridlake import io
    from matching.person_incremental import Previous
    from matching.scoring import FSModel

    spark, settings = ctx.spark, ctx.settings
    if ctx.extras.get("retrain_matching"):
        return None, None, "retraining on request (--retrain-matching)", None, None
    rows = io.read_columns(spark, settings, "gold", MODEL_TABLE, [f.name for f in PERSON_LINK_MODEL.fields])
    row = next((r for r in (rows.to_pylist() if rows is not None else []) if r["spec"] == spec.name), None)
    if row is None:
        return None, None, "no saved model", None, None
    if row["fingerprint"] != spec_print:
        return None, None, "the spec or the linkage code changed since the saved model", None, None
    try:
        model = FSModel.from_state(row["model"], spec)
    except (ValueError, KeyError) as exc:
        log.warning("persons: saved model unusable (%s); retraining", type(exc).__name__)
        return None, None, "saved model unusable", None, None
    if (io.table_version(spark, settings, "gold", "person_resolution") != row["resolution_version"]
            or io.table_version(spark, settings, "gold", STATE_TABLE) != row["state_version"]):
        return model, None, "gold.person_resolution or the state changed since the last linkage", None, None
    schema = person_link_state(len(spec.blocking))
    state = io.read_columns(spark, settings, "gold", STATE_TABLE, [f.name for f in schema.fields]).to_pandas()
    version = int(row["resolution_version"])
    table = io.read_columns(spark, settings, "gold", "person_resolution", [f.name for f in PERSON_RESOLUTION.fields],
                            version=version)
    done = table.to_pandas()
    key = done["source"] + ":" + done["record_id"] + "#" + done["mention_no"].astype(str)
    method = done["method"].map(LINKED)
    linked = method.notna().to_numpy()
    links = pd.DataFrame({"record_key": key.to_numpy(dtype=object),
                          "method": np.where(linked, method.to_numpy(dtype=object), "single"),
                          "weight": np.where(linked, done["score"].to_numpy(dtype=float), np.nan),
                          "explanation": np.where(linked, done["explanation"].to_numpy(dtype=object), "single"),
                          "person_key": done["person_key"].to_numpy(dtype=object),
                          "size": done["cluster_size"].to_numpy(dtype=np.int64)})
    return model, Previous(state, links), "", table, version


def save(ctx: RunContext, spec: LinkageSpec, spec_print: str, linkage: Linkage, resolution_version: int) -> None:
    """Tonight's state, then the model row naming both tables' versions (a night killed in between leaves a
    model row that no longer matches them: the next night links in full). A rerun commits nothing."""
    from gridlake import io

    spark, settings = ctx.spark, ctx.settings
    stats = linkage.stats
    if (stats.get("mode") == "incremental" and not stats.get("changed") and not stats.get("gone")
            and io.table_exists(spark, settings, "gold", STATE_TABLE)):
        state_version = io.table_version(spark, settings, "gold", STATE_TABLE)   # nothing changed: the same rows
    else:
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = person_link_state(len(spec.blocking))
        state = pa.Table.from_pandas(linkage.state, schema=to_arrow_schema(schema), preserve_index=False)
        # a night that changed a mention changed its row (its hash), so the rows are written without comparing
        state_version = io.overwrite_arrow(spark, settings, "gold", STATE_TABLE, state, schema)
    row = (spec.name, spec_print, linkage.model.to_state(), resolution_version, state_version)
    names = [f.name for f in PERSON_LINK_MODEL.fields]
    saved = io.read_columns(spark, settings, "gold", MODEL_TABLE, names)
    if saved is None or [tuple(r[n] for n in names) for r in saved.to_pylist()] != [row]:   # a rerun commits nothing
        io.write_table(spark.createDataFrame([row], PERSON_LINK_MODEL), settings, "gold", MODEL_TABLE, "overwrite")
