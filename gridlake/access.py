"""Which Delta tables a stage read and wrote, at which commits: the record a rerun is checked against.

:mod:`gridlake.io` notes every version it looks up (each read and existence check goes through one)
and every commit it makes here. While :func:`recording` is active, those notes build an
:class:`Accesses`: per table, the commit the stage saw first, moved on by the stage's own commits.
A table that moved in any other way while the stage ran (another process committed, or the stage
committed around :mod:`gridlake.io`) makes the record *doubtful*; a doubtful record is never used
to skip work (:mod:`gridlake.stage_replay`). Pure Python: no Spark, no storage.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

_ACTIVE: list[Accesses] = []
_LOCK = threading.Lock()


def commit_stamp(version: int, size: int = 0, modified_ms: int = 0) -> str:
    """What identifies a table's newest commit: its version, the commit file's size and time.

    A table dropped and written again can reach the same version number; its commit files
    are new files, so their stamps differ.
    """
    return "absent" if version < 0 else f"{version}/{size}/{modified_ms}"


@dataclass
class Accesses:
    """What one stage saw: ``tables`` maps ``layer.name`` to the stamp of the commit it expects there."""

    tables: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    doubts: list[str] = field(default_factory=list)

    def read(self, table: str, version: int, stamp: str) -> None:
        if table not in self.tables:
            self.tables[table], self.versions[table] = stamp, version
        elif self.tables[table] != stamp:
            self.doubts.append(f"{table} changed while the stage ran, not by a commit of the stage")
            self.tables[table], self.versions[table] = stamp, version

    def commit(self, table: str, before: tuple[int, str], after: tuple[int, str]) -> None:
        self.read(table, *before)
        if after[0] not in (before[0], before[0] + 1):
            self.doubts.append(f"{table} took {after[0] - before[0]} commits where the stage made one")
        self.tables[table], self.versions[table] = after[1], after[0]
        self.written.add(table)


@contextlib.contextmanager
def recording() -> Iterator[Accesses]:
    """Record the accesses of the code run inside; two recordings at once in a process doubt each other."""
    acc = Accesses()
    with _LOCK:
        if _ACTIVE:
            acc.doubts.append("another stage ran in this process at the same time")
            for other in _ACTIVE:
                other.doubts.append("another stage ran in this process at the same time")
        _ACTIVE.append(acc)
    try:
        yield acc
    finally:
        with _LOCK:
            _ACTIVE.remove(acc)


def note_read(table: str, version: int, stamp: str) -> None:
    """A version of ``table`` was looked up (before a read, an existence check, a count)."""
    with _LOCK:
        for acc in _ACTIVE:
            acc.read(table, version, stamp)


def note_commit(table: str, before: tuple[int, str], after: tuple[int, str]) -> None:
    """``table`` moved from ``before`` to ``after`` (``(version, stamp)``) around one commit."""
    with _LOCK:
        for acc in _ACTIVE:
            acc.commit(table, before, after)
