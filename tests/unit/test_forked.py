"""A pure computation run in a forked child (gridlake.forked.Forked): its value comes from the child, and when
the child fails, dies, hangs or cannot be made, the same value is computed in this process."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest

from gridlake.forked import Forked, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="this platform offers no fork")

SECRET = "110101199003077777"


def test_the_value_comes_from_a_child_that_read_this_process_memory():
    parent = os.getpid()
    data = np.arange(2_000_000, dtype=np.int64)      # in memory before the fork: nothing is sent to the child
    job = Forked(lambda: (os.getpid(), data * 2), "test")
    data[:] = 0                                       # changed here after the fork: the child saw it as it was
    assert job.forked
    pid, doubled = job.result()
    assert pid != parent
    np.testing.assert_array_equal(doubled, np.arange(2_000_000, dtype=np.int64) * 2)


def test_disabled_it_computes_here():
    job = Forked(os.getpid, "test", enabled=False)
    assert not job.forked
    assert job.result() == os.getpid()


def _fails_in_a_child(parent: int):
    def fn():
        if os.getpid() != parent:
            raise ValueError(f"bad ID {SECRET}")
        return "computed here"
    return fn


def test_a_child_that_fails_is_replaced_and_its_error_text_not_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="gridlake.forked"):
        assert Forked(_fails_in_a_child(os.getpid()), "test").result() == "computed here"
    assert "ValueError" in caplog.text and SECRET not in caplog.text


def test_a_child_that_dies_is_replaced():
    parent = os.getpid()

    def fn():
        if os.getpid() != parent:
            os._exit(3)
        return 42
    assert Forked(fn, "test").result() == 42


def test_a_child_that_does_not_answer_in_time_is_killed_and_replaced():
    parent = os.getpid()

    def fn():
        if os.getpid() != parent:
            time.sleep(60)
        return "here"
    job = Forked(fn, "test", timeout_s=0.5)
    proc = job._proc
    started = time.monotonic()
    assert job.result() == "here"
    assert time.monotonic() - started < 30
    assert not proc.is_alive()


def test_a_cancelled_child_is_stopped_and_nothing_computed_here():
    ran_here = []

    def fn():
        ran_here.append(os.getpid())
        return np.zeros(5_000_000)                # 40 MB: more than the pipe holds, so the child waits to send

    job = Forked(fn, "test")
    proc = job._proc
    time.sleep(0.5)
    job.cancel()
    assert not proc.is_alive() and ran_here == []  # the child's append happened in the child only
    job.cancel()                                   # twice is harmless


def test_delivered_says_whether_the_childs_value_was_used():
    ok = Forked(lambda: 1, "test")
    assert ok.result() == 1 and ok.forked and ok.delivered
    failed = Forked(_fails_in_a_child(os.getpid()), "test")
    assert failed.result() == "computed here" and failed.forked and not failed.delivered
