"""The houses collected in the publication's thread (jobs.matching.house_publish.ResolvedNight.publish_after_codes):
person linkage's wait gives them, or raises their error; and a failed collection publishes nothing."""

from __future__ import annotations

import pytest

from jobs.matching.house_publish import ResolvedNight, beside


class _Night:
    def __init__(self, codes=None, error=None):
        self.codes, self.error, self.published = codes, error, False
        self.stats = {}   # ResolvedNight's statistics, where the collection's seconds go

    def house_codes(self):
        if self.error:
            raise self.error
        return self.codes

    def publish(self):
        self.published = True
        return {"records": len(self.codes)}


def test_person_linkage_waits_for_the_houses_collected_beside():
    night = _Night(codes=["H1", "H2"])
    publish, codes = ResolvedNight.publish_after_codes(night)
    published, seen = beside(publish, lambda ready: (codes(), ready())[0], threads=2)
    assert seen == ["H1", "H2"] and published == {"records": 2} and night.published
    assert night.stats["house_codes_seconds"] >= 0


def test_a_failed_collection_raises_in_both_threads_and_publishes_nothing():
    night = _Night(error=RuntimeError("collect failed"))
    publish, codes = ResolvedNight.publish_after_codes(night)
    waited = []

    def work(ready):
        try:
            codes()
        except RuntimeError as exc:
            waited.append(str(exc))
            raise
    with pytest.raises(RuntimeError, match="collect failed"):
        beside(publish, work, threads=2)
    assert waited == ["collect failed"] and not night.published and "house_codes_seconds" not in night.stats
