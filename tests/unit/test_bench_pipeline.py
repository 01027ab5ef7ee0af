"""The pipeline bench never counts a failed night as meeting a target."""

from __future__ import annotations

from tools.bench.pipeline import night_met


def test_a_failed_night_never_meets_its_target():
    assert night_met({"returncode": 0, "seconds": 400.0}, 480)
    assert not night_met({"returncode": 0, "seconds": 481.0}, 480)
    assert not night_met({"returncode": 1, "seconds": 100.0}, 480)     # died early: not a fast night
    assert not night_met({"returncode": 0, "seconds": None}, 480)
