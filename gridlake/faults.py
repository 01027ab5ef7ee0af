"""Fault injection for crash-and-rerun tests.

Two kinds of fault, both chosen by the environment variable ``GRIDLAKE_FAULT``:

* a **point**: code calls ``fault_point("silver.merged")`` at a place where a crash
  would hurt most. ``GRIDLAKE_FAULT=silver.merged`` (or ``silver.merged@N`` for the
  N-th time the point is reached) kills the run there.
* a **window**: code wraps a Delta write in ``with fault_window("silver.merge", table_path):``.
  While the block runs, a daemon thread kills the run, so the JVM is caught inside the write:

  - ``silver.merge~SECONDS`` (optionally ``~SECONDS@N`` for the N-th time the window is
    entered): ``SECONDS`` after the write began;
  - ``silver.merge~file`` (optionally ``~file@N``): the moment a new data file appears
    under the table's (local) directory, i.e. after Spark started writing the data and
    before the transaction log commit that would make it visible.

  When the write ends first, the run is killed right after it instead, so the fault always fires.
  A writer that writes the data files itself and commits them in a second step (``deltalake``'s
  ``create_write_transaction``) calls ``before_commit(table_path)`` between the two, so a ``~file``
  window kills it there every time: a write of milliseconds can otherwise commit before the
  watching thread next looks.

Several faults may be given, comma separated. "Killed" means what ``kill -9`` of the
machine would do: the Spark JVM of this process (if one runs) gets SIGKILL, then the
Python process ends at once with exit code 137 (``os._exit``): no cleanup, no
``finally`` blocks, no flushing. Before dying a single line ``gridlake-fault: ...``
is written to stderr (raw ``os.write``) saying which fault fired and how.

Unset, a point or a window costs one environment lookup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

ENV = "GRIDLAKE_FAULT"
EXIT_CODE = 137

_seen: Counter[str] = Counter()
_parsed: dict[str, tuple[Fault, ...]] = {}
# the ~file window open now, if any: (its label, the table directory watched, the data files there before)
_open_window: tuple[str, str, frozenset[str]] | None = None


@dataclass(frozen=True)
class Fault:
    """One parsed fault: where (``name``), which occurrence (``nth``), and for windows the delay."""

    name: str
    nth: int = 1
    delay: float | None = None  # seconds (windows); None for a point or a ``~file`` window
    on_file: bool = False  # window firing when a new data file appears

    @property
    def is_window(self) -> bool:
        return self.delay is not None or self.on_file

    @property
    def label(self) -> str:
        how = "" if not self.is_window else "~file" if self.on_file else f"~{self.delay:g}"
        return f"{self.name}{how}@{self.nth}"


def parse_spec(spec: str) -> tuple[Fault, ...]:
    """Parse ``GRIDLAKE_FAULT``: comma-separated ``name[@N]``, ``name~SECONDS[@N]`` or ``name~file[@N]``.

    Raises ValueError on a malformed entry (a typo must not silently disable the fault).
    """
    faults = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        head, at, nth_text = part.partition("@")
        name, tilde, delay_text = head.partition("~")
        name = name.strip()
        if not name:
            raise ValueError(f"{ENV}: empty fault name in {part!r}")
        on_file = tilde and delay_text.strip() == "file"
        try:
            nth = int(nth_text) if at else 1
            delay = float(delay_text) if tilde and not on_file else None
        except ValueError:
            raise ValueError(f"{ENV}: cannot parse {part!r} (expected name[~seconds|~file][@n])") from None
        if nth < 1 or (delay is not None and not delay >= 0):
            raise ValueError(f"{ENV}: {part!r}: n must be >= 1 and seconds >= 0")
        faults.append(Fault(name, nth, delay, bool(on_file)))
    return tuple(faults)


def _faults() -> tuple[Fault, ...]:
    spec = os.environ.get(ENV)
    if not spec:
        return ()
    faults = _parsed.get(spec)
    if faults is None:
        faults = _parsed[spec] = parse_spec(spec)
    return faults


def _due(name: str, window: bool) -> Fault | None:
    """Count one arrival at ``name`` (point or window) and return the fault that fires now, if any."""
    matching = [f for f in _faults() if f.name == name and f.is_window == window]
    if not matching:
        return None
    key = f"{name}~" if window else name
    _seen[key] += 1
    return next((f for f in matching if _seen[key] == f.nth), None)


def _kill_jvm() -> None:
    """SIGKILL the Spark JVM this process launched, if any (without importing pyspark)."""
    for module in ("pyspark.core.context", "pyspark.context", "pyspark"):
        gateway = getattr(getattr(sys.modules.get(module), "SparkContext", None), "_gateway", None)
        pid = getattr(getattr(gateway, "proc", None), "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            return


def die(message: str) -> None:
    """Write ``gridlake-fault: <message>`` to stderr, kill the JVM, and exit 137 at once."""
    with contextlib.suppress(OSError):
        os.write(2, f"gridlake-fault: {message}\n".encode())
    _kill_jvm()
    os._exit(EXIT_CODE)


def fault_point(name: str) -> None:
    """Die here if ``GRIDLAKE_FAULT`` asks for this point (this arrival)."""
    if not os.environ.get(ENV):
        return
    fault = _due(name, window=False)
    if fault is not None:
        die(f"point {fault.label}")


def _data_files(root: str) -> set[str]:
    """Data files under a table directory (not its transaction log)."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "_delta_log"]
        found.update(os.path.join(folder, f) for f in files if f.endswith(".parquet"))
    return found


def before_commit(path: str | os.PathLike[str]) -> None:
    """Die here if a ``~file`` window is open on the table at ``path`` and new data files are under it.

    Called by a writer between writing a table's data files and committing them; costs one lookup when
    no window is open.
    """
    window = _open_window
    if window is None or os.path.abspath(os.fspath(path)) != window[1]:
        return
    label, root, before = window
    new = _data_files(root) - before
    if new:
        die(f"window {label} fired inside the block: {len(new)} uncommitted data file(s) written")


def _watch(root: str, before: set[str], stop: threading.Event, label: str) -> None:
    while not stop.wait(0.005):
        new = _data_files(root) - before
        if new:
            die(f"window {label} fired inside the block: {len(new)} uncommitted data file(s) written")


@contextlib.contextmanager
def fault_window(name: str, path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Kill the process while the wrapped block (a write to the table at ``path``) runs, if asked.

    ``GRIDLAKE_FAULT=name~SECONDS`` kills after a delay, ``name~file`` as soon as a new data file
    appears under ``path`` (local paths only). When the block finishes first, the process dies
    right after it (reported as ``block ended first``), so the fault fires either way.
    """
    if not os.environ.get(ENV):
        yield
        return
    fault = _due(name, window=True)
    if fault is None:
        yield
        return
    global _open_window
    started = time.monotonic()
    stop = threading.Event()
    if fault.on_file:
        root = os.fspath(path) if path is not None and "://" not in os.fspath(path) else None
        if root is not None:
            before = _data_files(root)
            _open_window = (fault.label, os.path.abspath(root), frozenset(before))
            thread = threading.Thread(target=_watch, args=(root, before, stop, fault.label), daemon=True)
            thread.start()
    else:
        timer = threading.Timer(fault.delay or 0.0, lambda: die(f"window {fault.label} fired inside the block"))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        stop.set()
        _open_window = None
        if not fault.on_file:
            timer.cancel()
        die(f"window {fault.label}: block ended first after {time.monotonic() - started:.2f}s; killed after it")
