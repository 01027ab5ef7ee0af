"""Fault injection points for crash-and-rerun tests.

Code calls ``fault_point("silver.merge")`` at places where a crash would hurt most.
When ``GRIDLAKE_FAULT`` names that point (optionally ``name@N`` for the N-th time it
is reached), the process dies at once with exit code 137, as if killed: no cleanup,
no ``finally`` blocks, no flushing. Unset, a fault point costs one dict lookup.
"""

from __future__ import annotations

import os
from collections import Counter

_seen: Counter[str] = Counter()
EXIT_CODE = 137


def fault_point(name: str) -> None:
    """Die here if GRIDLAKE_FAULT asks for this point."""
    spec = os.environ.get("GRIDLAKE_FAULT")
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _seen[name] += 1
    if _seen[name] >= int(nth or 1):
        os._exit(EXIT_CODE)
