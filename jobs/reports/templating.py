"""The Jinja2 environment of the HTML reports: autoescaped, strict about undefined names.

One environment per template folder (cached). Templates get the number formats as filters
(``num``, ``pct``, ``score``, ``cell``) and ``chart(spec)``, which draws a plain-data chart spec
(:func:`jobs.reports.charts.render`) as inline SVG. Python builds plain data; the markup is
in the templates.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

DASH = "—"
_NUMERIC = re.compile(r"[\d,.%—-]+")


def fmt_int(v: Any) -> str:
    """``1234`` -> ``1,234``; ``None`` -> ``—``."""
    return DASH if v is None else f"{float(v):,.0f}"


def fmt_pct(v: Any) -> str:
    """``0.873`` -> ``87.3%``; ``None`` -> ``—``."""
    return DASH if v is None else f"{float(v) * 100:.1f}%"


def fmt_score(v: Any) -> str:
    """A match score with three decimals; ``None`` -> ``—``."""
    return DASH if v is None else f"{float(v):.3f}"


def cell_class(v: Any) -> str:
    """``n`` (right-aligned) for a number-like cell, ``t`` for text."""
    return "n" if _NUMERIC.fullmatch(str(v)) else "t"


def _chart(spec: dict[str, Any]) -> Any:
    from markupsafe import Markup

    from jobs.reports import charts

    return Markup(charts.render(spec))  # safe: matplotlib's SVG writer escapes every label


@functools.cache
def environment(folder: str) -> Environment:
    """The autoescaping, StrictUndefined environment over the templates in ``folder``."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=fmt_int, pct=fmt_pct, score=fmt_score, cell=cell_class)
    env.globals["chart"] = _chart
    return env


def render(folder: Path, name: str, **context: Any) -> str:
    """Render the template ``name`` of ``folder`` with ``context``."""
    return environment(str(folder)).get_template(name).render(**context)
