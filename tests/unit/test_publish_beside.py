"""jobs.matching.house_publish.beside: the houses published from a second thread while persons are linked,
and nothing of the persons published unless the houses were (no Spark)."""

from __future__ import annotations

import threading

import pytest

from jobs.matching.house_publish import beside


class GateError(RuntimeError):
    pass


def test_the_publication_runs_beside_the_work_and_both_results_return():
    started = threading.Event()
    seen: list[str] = []

    def publish():
        assert started.wait(10), "the work did not run while the houses were published"
        seen.append(threading.current_thread().name)
        return {"version": 3}

    def work(ready):
        started.set()          # publish is blocked on this: only a second thread gets past it
        ready()
        return {"persons": 2}

    assert beside(publish, work, threads=2) == ({"version": 3}, {"persons": 2})
    assert seen and seen[0] != threading.main_thread().name


def test_a_failed_publication_stops_the_work_before_it_publishes():
    published_persons: list[bool] = []

    def publish():
        raise GateError("gold.house_resolution failed its audit")

    def work(ready):
        ready()                # raises the publication's error
        published_persons.append(True)
        return {}

    with pytest.raises(GateError, match="failed its audit"):
        beside(publish, work, threads=2)
    assert published_persons == []


def test_the_publications_error_comes_first_when_both_fail_and_the_works_alone_otherwise():
    done: list[str] = []

    def failing_publish():
        raise GateError("houses")

    def publish():
        done.append("houses")
        return {}

    def failing_work(ready):
        raise ValueError("persons")

    with pytest.raises(GateError, match="houses"):
        beside(failing_publish, failing_work, threads=2)
    with pytest.raises(ValueError, match="persons"):
        beside(publish, failing_work, threads=2)
    assert done == ["houses"], "the publication finished before the work's error was raised"


def test_one_thread_publishes_first_then_works():
    order: list[str] = []

    def publish():
        order.append(f"publish:{threading.current_thread().name}")
        return {}

    def work(ready):
        ready()
        order.append("work")
        return {}

    beside(publish, work, threads=1)
    assert order == [f"publish:{threading.main_thread().name}", "work"]
