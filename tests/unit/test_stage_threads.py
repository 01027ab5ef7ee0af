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


def test_threads_unless_a_fault_plan_and_the_large_units():
    from gridlake.concurrency import large_units, threads_for

    assert threads_for(2, False) == 2
    assert threads_for(2, True) == 1
    assert threads_for(0, False) == 1
    assert large_units({"housing": 500_000, "police": 222, "declarations": 100_001}, 100_000) == {
        "housing", "declarations"}


def test_two_large_units_never_run_at_once_and_small_ones_run_beside_them():
    """A district night: housing and declarations (large, declarations after housing) and rentals (large,
    independent here) never overlap; the small sources run beside the large ones."""
    lock = threading.Lock()
    running: set[str] = set()
    overlaps: list[set[str]] = []

    def work(name: str) -> str:
        with lock:
            running.add(name)
            overlaps.append(set(running))
        time.sleep(0.15 if name in ("housing", "rentals", "declarations") else 0.03)
        with lock:
            running.discard(name)
        return name

    names = ["housing", "rentals", "declarations", "police", "mediation", "safety"]
    large = {"housing", "rentals", "declarations"}
    out = run_units(names, {"declarations": {"housing"}}, work, 2, large)
    assert out == {n: n for n in names}
    assert all(len(seen & large) <= 1 for seen in overlaps)           # never two large at once
    assert any(seen & large and seen - large for seen in overlaps)     # a small one beside a large one
    assert len(overlaps) == len(names)


def test_a_large_unit_does_not_hold_back_the_small_ones_queued_after_it():
    started: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> str:
        with lock:
            started.append(name)
        time.sleep(0.1 if name.startswith("big") else 0.01)
        return name

    run_units(["big1", "big2", "s1", "s2"], {}, work, 2, {"big1", "big2"})
    assert started.index("s1") < started.index("big2") and started.index("s2") < started.index("big2")
