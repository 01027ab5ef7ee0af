"""The officers' workbooks, built in worker processes on a large night (settings ``workbooks``).

openpyxl builds a workbook in pure Python: on a district night (1,720 grid lists) that was about 23 s of one
core while the JVM and the other core waited. :class:`Workbooks` hands each grid's
:func:`jobs.exports.writer.xlsx_bytes` to a pool of ``processes`` worker processes once a night reaches
``min_grids`` grids, and builds it in the stage's own process before that, with one process, or when the
pool cannot be started or breaks (a worker killed): the bytes are the same either way, since the function
is pure and deterministic. Workers are spawned, never forked: the stage's process runs a JVM gateway and
its threads, which a fork would copy half-way. As with every spawned worker, a worker imports the main
module of the stage's process again: a program that runs the stage must keep its top level under
``if __name__ == "__main__"`` (``gridlake``, ``python -m gridlake.cli`` and ``gridlake/submit.py``, which the
Airflow tasks run, do). Where that module cannot be imported again (a main module naming no real file), the
workers fail to start and the workbooks are built in the stage's process, logged once.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)


class Workbooks:
    """Build ``fn(*args)`` (bytes) per grid, in a process pool once ``min_grids`` grids were asked for.

    :meth:`submit` returns a job; :meth:`result` its bytes, raising what ``fn`` raised for that grid. Use as
    a context manager: the pool's workers end with it."""

    def __init__(self, fn: Callable[..., bytes], processes: int = 1, min_grids: int = 0) -> None:
        self.fn = fn
        self.processes = processes
        self.min_grids = min_grids
        self.asked = 0
        self.pool: ProcessPoolExecutor | None = None
        self.disabled = processes <= 1

    def __enter__(self) -> Workbooks:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    @property
    def window(self) -> int:
        """Grids in flight before the oldest is written (0: each is written as soon as it is asked for)."""
        return 2 * self.processes if self.pool is not None else 0

    def _start(self) -> None:
        self.pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"))
        log.info("exports: workbooks built by up to %d worker processes", self.processes)

    def submit(self, *args: Any) -> tuple[Future, tuple[Any, ...]]:
        self.asked += 1
        if self.pool is None and not self.disabled and self.asked >= max(self.min_grids, 1):
            if multiprocessing.parent_process() is None:
                self._start()
            else:   # a worker, or a process some other pool started: never a pool of its own
                self.disabled = True
        if self.pool is not None:
            try:   # the workers start here: a daemonic process (some executors' task processes) may have none
                return self.pool.submit(self.fn, *args), args
            except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, AssertionError, OSError: built here
                self._broken(exc)
        done: Future = Future()
        try:
            done.set_result(self.fn(*args))
        except Exception as exc:  # noqa: BLE001 - raised again by result(), for that grid only
            done.set_exception(exc)
        return done, args

    def result(self, job: tuple[Future, tuple[Any, ...]]) -> bytes:
        future, args = job
        try:
            return future.result()
        except BrokenProcessPool as exc:   # a worker died: this grid (and every later one) built here
            self._broken(exc)
            return self.fn(*args)

    def _broken(self, exc: BaseException) -> None:
        if self.disabled:   # the other grids in flight when it broke
            return
        log.warning("exports: the workbook processes stopped (%s); the rest built in this process",
                    type(exc).__name__)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool, self.disabled = None, True
