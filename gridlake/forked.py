"""A pure computation on this process's memory, run in a forked child while this process goes on.

Python runs one thread at a time, so work in the driver's second thread only helps while the first waits (on
Spark, on a file). A computation that only reads arrays already in memory and returns arrays can instead run in
a child made by ``fork``: it starts with this process's memory (nothing is copied or pickled on the way in)
and only its result comes back, through a pipe. Person linkage uses it for the state hashes of a full
linkage (:mod:`matching.person_incremental`), which took 11 s of a district's first night on the driver's one
busy core while the other waited.

Fails safe: where ``fork`` is not offered, when the child cannot start, fails, dies or does not answer within
the timeout, :meth:`Forked.result` computes the value here, as if there had been no child. The child is
given no lock to wait for and writes no log (a lock another thread held at the fork stays held in the child):
``fn`` must be a pure computation. A child's error is reported by its type only; its text could quote a value.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def can_fork() -> bool:
    """Whether this platform offers ``fork`` (Linux and other POSIX systems; not Windows)."""
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods()


def _child(fn: Callable[[], Any], send: Any) -> None:
    try:
        answer: tuple[bool, Any] = (True, fn())
    except BaseException as exc:   # the type only: an error's text may quote a value
        answer = (False, type(exc).__name__)
    send.send(answer)
    send.close()


class Forked(Generic[T]):
    """``fn()`` started in a forked child now (``enabled`` and where ``fork`` is offered); :meth:`result` gives
    it, computed here instead when the child did not deliver it.

    ``fn`` must be pure (its value depends only on memory as it is now) and must not log or take a lock."""

    def __init__(self, fn: Callable[[], T], what: str, enabled: bool = True, timeout_s: float = 900.0):
        self._fn, self._what, self._timeout = fn, what, timeout_s
        self._proc: Any = None
        self._conn: Any = None
        self.forked = self.delivered = False   # a child started; its value used
        if not (enabled and can_fork()):
            return
        for stream in (sys.stdout, sys.stderr):   # else the child writes what they buffered again when it ends
            if stream is not None:
                stream.flush()
        try:
            ctx = multiprocessing.get_context("fork")
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(fn, send), name=f"gridlake-{what}", daemon=True)
            proc.start()
        except Exception as exc:   # noqa: BLE001 (no child, whatever the cause: computed here)
            log.warning("%s: no child process (%s); computed in this process", what, type(exc).__name__)
            return
        send.close()
        self._proc, self._conn, self.forked = proc, receive, True

    def cancel(self) -> None:
        """Stop the child, if any, without waiting for its value (the caller failed and will not ask for it:
        a long-lived process, such as the stage server, must not keep a child blocked on its pipe)."""
        if self._proc is not None:
            self._conn.close()
            self._proc.kill()
            self._proc.join()
            self._proc = None

    def result(self) -> T:
        """The child's value; else (no child, or it failed, died or timed out) ``fn()`` computed here."""
        if self._proc is None:
            return self._fn()
        why = "did not answer in time"
        try:
            if self._conn.poll(self._timeout):
                ok, value = self._conn.recv()
                if ok:
                    self.delivered = True
                    return value
                why = f"failed ({value})"
        except (EOFError, OSError) as exc:
            why = f"ended without an answer ({type(exc).__name__})"
        finally:
            self._conn.close()
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None
        log.warning("%s: the child process %s; computed in this process", self._what, why)
        return self._fn()
