"""The houses person linkage is given before gold.house_resolution is published are the ones the table then
holds (jobs.matching.house_publish.ResolvedNight.house_codes), on a full and an incremental night."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.spark

RUN_DATE = dt.date(2024, 5, 2)


def _rows(spark, rows):
    from jobs.matching.runner import HOUSE_RESOLUTION

    return spark.createDataFrame(
        [(s, r, h, 0.99 if h else None, "exact_address" if h else "unresolved", "why", "G1" if h else None, "C1",
          hash((s, r, h)) & 0xFFFF, None) for s, r, h in rows], HOUSE_RESOLUTION)


def _night(spark, settings, mode, result, **kw):
    from gridlake.context import RunContext
    from gridlake.manifest import Manifest
    from jobs.matching.house_publish import ResolvedNight
    from matching.scoring import initial_model
    from matching.spec import load_spec

    spec = load_spec("address_to_house")
    ctx = RunContext(settings, spark, RUN_DATE, f"test__{mode}", Manifest.open(settings, f"test__{mode}", RUN_DATE))
    return ResolvedNight(ctx, spec, "fp", initial_model(spec), 0, kw.pop("version", -1), mode,
                         result.localCheckpoint(eager=True), **kw)


def _table(spark, settings):
    from gridlake import io

    return sorted(tuple(r) for r in io.read_table(spark, settings, "gold", "house_resolution")
                  .select("source", "record_id", "house_code").collect())


def _codes(frame):
    return sorted((r.source, r.record_id, None if r.house_code != r.house_code else r.house_code)
                  for r in frame.itertuples())


def test_the_houses_given_to_person_linkage_are_the_published_tables(spark, settings):
    from pyspark.sql import functions as F

    from gridlake import io

    first = [("declarations", "D1", "H1"), ("declarations", "D2", "H2"), ("rentals", "R1", None),
             ("police_incidents", "P1", "H3")]
    night = _night(spark, settings, "full", _rows(spark, first))
    codes = night.house_codes()
    night.publish()
    assert _codes(codes) == _table(spark, settings) == sorted(first)

    # night 2: D2 re-linked to another house, R1 now resolved, P1 no longer delivered, D3 new; D1 unchanged
    relinked = [("declarations", "D2", "H9"), ("rentals", "R1", "H4"), ("declarations", "D3", "H5")]
    version = io.table_version(spark, settings, "gold", "house_resolution")
    previous = io.read_table(spark, settings, "gold", "house_resolution")
    changes = spark.createDataFrame(
        [("declarations", "D3", "new"), ("declarations", "D2", "changed"), ("police_incidents", "P1", "gone")],
        "source string, record_id string, change string")
    gone = changes.where(F.col("change") == "gone").select("source", "record_id")
    night = _night(spark, settings, "incremental", _rows(spark, relinked), version=version, gone=gone,
                   changes=changes, previous=previous, n_todo=3, n_gone=1)
    codes = night.house_codes()
    published = night.publish()
    expected = sorted([("declarations", "D1", "H1"), *relinked])
    assert _codes(codes) == _table(spark, settings) == expected
    assert published["version"] == version + 1 and published["records"] == 4


def test_the_houses_collected_in_the_publications_thread_are_the_ones_it_publishes(spark, settings):
    """``publish_after_codes``: the publication's thread collects the houses first, person linkage waits for
    them in its own (``beside``), and they are what the table then holds."""
    from jobs.matching.house_publish import beside

    rows = [("declarations", "D1", "H1"), ("rentals", "R1", None), ("police_incidents", "P1", "H3")]
    night = _night(spark, settings, "full", _rows(spark, rows))
    publish, codes = night.publish_after_codes()
    published, seen = beside(publish, lambda ready: (_codes(codes()), ready())[0], threads=2)
    assert seen == _table(spark, settings) == sorted(rows)
    assert published["records"] == 3
