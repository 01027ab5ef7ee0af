"""gridlake.concurrency: units from several threads, dependencies first, failures reported the same way."""

from __future__ import annotations

import threading
import time

import pytest

from gridlake.concurrency import run_units, waves


def test_waves_put_dependencies_first_and_refuse_cycles():
    assert waves(["a", "b", "c"], {"b": {"a"}, "c": set()}) == [["a", "c"], ["b"]]
    assert waves(["b", "a"], {"b": {"a", "outside"}}) == [["a"], ["b"]]  # names outside are ignored
    with pytest.raises(ValueError, match="cycle: a, b"):
        waves(["a", "b"], {"a": {"b"}, "b": {"a"}})


def test_one_thread_keeps_the_given_order_when_it_is_valid():
    seen: list[str] = []
    out = run_units(["h", "r", "p"], {"r": {"h"}}, lambda n: seen.append(n) or n.upper(), 1)
    assert seen == ["h", "r", "p"] and out == {"h": "H", "r": "R", "p": "P"}
    seen.clear()
    run_units(["r", "h"], {"r": {"h"}}, seen.append, 1)
    assert seen == ["h", "r"]


def test_two_threads_overlap_and_a_unit_waits_for_its_dependency():
    lock = threading.Lock()
    active, peak, finished = [0], [0], []

    def work(name: str) -> str:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2 if name == "housing" else 0.05)
        with lock:
            active[0] -= 1
            finished.append(name)
        return name

    names = ["housing", "rentals", "police", "mediation"]
    out = run_units(names, {"rentals": {"housing"}}, work, 2)
    assert out == {n: n for n in names}
    assert peak[0] == 2  # two at once, never more
    assert finished.index("housing") < finished.index("rentals")


def test_first_failure_in_given_order_is_raised_and_nothing_new_starts():
    started: list[str] = []

    def work(name: str) -> str:
        started.append(name)
        time.sleep(0.05 if name == "a" else 0.1)
        if name in ("a", "b"):
            raise RuntimeError(f"{name} failed")
        return name

    with pytest.raises(RuntimeError, match="a failed"):
        run_units(["a", "b", "c", "d"], {"c": {"a"}}, work, 2)
    assert "c" not in started and "d" not in started  # c waits for a (failed); no start after a failure


def test_threads_only_on_a_small_night_and_never_under_a_fault_plan():
    from gridlake.concurrency import threads_for

    assert threads_for(2, 100_000, 10_000, False) == 2
    assert threads_for(2, 100_000, 100_001, False) == 1  # a district night: one source at a time
    assert threads_for(2, 100_000, 10, True) == 1
    assert threads_for(0, 100_000, 10, False) == 1
