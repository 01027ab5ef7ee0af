"""Independent units of one stage, run from several driver threads (``spark.stage_threads``).

Spark runs jobs submitted from several threads of one driver concurrently; on a small night most of a
unit's time is driver work (planning, Delta commits, validation), so while one unit plans another's
jobs use the cores. Units declare what they wait for; :func:`run_units` starts each unit once its
dependencies are done, at most ``threads`` at a time, and returns every result by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


def threads_for(configured: int, fault_plan: bool) -> int:
    """Threads for a stage's units: ``configured``, or one under a fault plan, which counts arrivals at its
    points (one unit at a time keeps "the nth" arrival in one place)."""
    if fault_plan:
        return 1
    return max(1, configured)


def large_units(rows: Mapping[str, int], max_rows: int) -> set[str]:
    """The units of more than ``max_rows`` new rows: :func:`run_units` runs none of them beside another (each
    caches its batch: two large sources side by side ran a 4 GB driver out of heap at district scale), while
    the small ones run beside them."""
    return {name for name, n in rows.items() if n > max_rows}


def waves(names: Sequence[str], depends_on: Mapping[str, set[str]]) -> list[list[str]]:
    """``names`` in waves: each unit after every unit it depends on (dependencies outside ``names`` are
    ignored), in the given order within a wave. Raises ValueError on a cycle, naming its units."""
    todo = list(names)
    done: set[str] = set()
    out: list[list[str]] = []
    while todo:
        wave = [n for n in todo if not ((depends_on.get(n, set()) & set(names)) - done - {n})]
        if not wave:
            raise ValueError(f"units depend on each other in a cycle: {', '.join(todo)}")
        out.append(wave)
        done.update(wave)
        todo = [n for n in todo if n not in done]
    return out


def run_units(names: Sequence[str], depends_on: Mapping[str, set[str]], work: Callable[[str], T],
              threads: int, large: set[str] | frozenset[str] = frozenset()) -> dict[str, T]:
    """``{name: work(name)}``, each unit once every unit it depends on has finished, up to ``threads`` at once,
    and never two units of ``large`` at once (:func:`large_units`).

    Units start in ``names`` order as soon as they are ready (1 thread: one after another, in that order,
    dependencies first); a large unit waiting for another large one to finish lets the small ones after it
    start. After a failure no further unit starts; every started unit finishes before this raises the first
    failure in ``names`` order (the same error whatever order the threads ended in).
    """
    layered = [n for wave in waves(names, depends_on) for n in wave]  # also refuses a cycle
    deps = {n: (set(depends_on.get(n, set())) & set(names)) - {n} for n in names}
    if threads <= 1:  # the given order when it already puts dependencies first
        in_order = all(deps[n] <= set(names[:i]) for i, n in enumerate(names))
        return {name: work(name) for name in (names if in_order else layered)}
    results: dict[str, T] = {}
    errors: dict[str, BaseException] = {}
    pending = list(names)
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gridlake-unit") as pool:
        while pending or running:
            for name in [] if errors else list(pending):
                if len(running) >= threads:
                    break
                if name in large and large & set(running.values()):
                    continue
                if deps[name] <= results.keys():
                    pending.remove(name)
                    running[pool.submit(work, name)] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future.exception() is not None:
                    errors[name] = future.exception()  # type: ignore[assignment]
                else:
                    results[name] = future.result()
    if errors:
        raise errors[next(n for n in names if n in errors)]
    return results
