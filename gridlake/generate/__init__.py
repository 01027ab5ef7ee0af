"""Synthetic Futian-like district: department deliveries with realistic noise, plus the planted truth.

Entry points: :func:`generate` (library), ``gridlake generate`` (CLI, ``gridlake.generate.cli``),
:func:`gridlake.generate.officers.simulate_verifications` (the officers' field checks).
"""

from __future__ import annotations

from gridlake.generate.run import generate

__all__ = ["generate"]
