"""gridlake: the nightly data platform for grid-based community governance."""

from __future__ import annotations

__version__ = "0.1.0"
