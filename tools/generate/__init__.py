"""Synthetic Futian-like district: department deliveries with realistic noise, plus the planted truth.

Entry points: :func:`generate` (library), ``gridlake generate`` (CLI, ``tools.generate.cli``),
:func:`tools.generate.officers.simulate_verifications` (the officers' field checks).
"""

from __future__ import annotations

from tools.generate.run import generate

__all__ = ["generate"]
