"""In which order silver's sources may run: a source whose suite looks another silver table up waits for it."""

from __future__ import annotations

from collections.abc import Sequence

from gridlake.quality.suites import load_suite

__all__ = ["lookup_dependencies"]


def lookup_dependencies(names: Sequence[str]) -> dict[str, set[str]]:
    """``{source: silver tables of names its suite's derived columns look up}``: e.g. declarations
    checks its house codes against tonight's silver.housing, so housing is processed first."""
    deps: dict[str, set[str]] = {}
    for name in names:
        spec = load_suite("silver", name)
        looked_up = set()
        for d in (spec.derived.values() if spec is not None else []):
            layer, _, table = str(d.get("lookup", "") if isinstance(d, dict) else "").partition(".")
            if layer == "silver" and table in names and table != name:
                looked_up.add(table)
        deps[name] = looked_up
    return deps
