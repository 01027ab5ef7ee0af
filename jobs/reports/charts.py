"""Report charts drawn with matplotlib, returned as inline ``<svg>`` strings for the HTML reports.

Bar charts (grouped, stacked, horizontal) and line charts. Text stays text
(``svg.fonttype: none``): the Chinese labels are rendered by the reader's own fonts, so the
page needs no font file and fetches nothing. The output is deterministic (fixed
``svg.hashsalt``, no date in the metadata): the same data gives the same bytes, so a rerun of
a night leaves the report file untouched. The SVG is cut down for embedding in HTML5: no XML
prolog, no DOCTYPE, no RDF metadata, no namespace URLs (``xlink:href`` becomes ``href``).

matplotlib is imported inside the functions only, so CLI start-up and DAG parsing do not pay for it.
Labels are escaped by matplotlib's SVG writer, and math text is off (a ``$`` in a name is a ``$``).
"""

from __future__ import annotations

import hashlib
import html
import io
import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

PALETTE = ("#2f6db5", "#e07b39", "#3a9d5d", "#c0392b", "#8e6bbf", "#7f8c8d", "#d4a017", "#17a2b8")
FONTS = ["Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei",
         "DejaVu Sans"]
DPI = 100  # width/height arguments are in CSS pixels
EMPTY = "暂无数据"

Series = Sequence[tuple[str, Sequence[float | None]]]

RC: dict[str, Any] = {
    "svg.fonttype": "none",        # text as <text>: Chinese labels stay text, the reader's fonts draw them
    "svg.hashsalt": "gridlake",    # deterministic element ids
    "svg.image_inline": True,
    "font.family": "sans-serif",
    "font.sans-serif": FONTS,
    "font.size": 9,
    "text.parse_math": False,      # a "$" in a label is literal, not math
    "text.usetex": False,
    "axes.unicode_minus": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#888888",
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "legend.frameon": False,
    "path.simplify": False,
}

_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_ID = re.compile(r'(\bid="|url\(#|href="#)([^"()]+)')


def fmt_int(v: float) -> str:
    """``1234.0`` -> ``1,234``."""
    return f"{v:,.0f}"


def fmt_pct(v: float) -> str:
    """``0.873`` -> ``87.3%``."""
    return f"{v * 100:.1f}%"


def _numbers(values: Sequence[float | None]) -> list[float]:
    return [0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]


def _figure(width: int, height: int) -> tuple[Any, Any]:
    """A figure on an Agg canvas (no pyplot: no global figure registry, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _to_svg(fig: Any, title: str) -> str:
    """The figure as an ``<svg>`` element for HTML5: deterministic, no URL, titled for screen readers."""
    import warnings

    buf = io.StringIO()
    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)  # "font family not found": expected, the reader's fonts draw the text
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    finally:
        font_log.setLevel(level)
    text = _PROLOG.sub("", buf.getvalue(), count=1)
    text = _COMMENT.sub("", _METADATA.sub("", text))
    text = _XMLNS.sub("", text).replace("xlink:href=", "href=")
    # matplotlib's "*{stroke-linejoin...}" rule would apply to the whole HTML page: keep it to the chart
    text = text.replace("<style type=\"text/css\">*{", "<style type=\"text/css\">svg.chart *{", 1)
    # ids unique per chart: several charts share one HTML page (and one id namespace)
    prefix = "c" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    text = _ID.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    label = html.escape(title, quote=True)
    text = text.replace("<svg ", f'<svg class="chart" role="img" aria-label="{label}" ', 1)
    head_end = text.index(">") + 1
    return f"{text[:head_end]}\n <title>{label}</title>{text[head_end:].rstrip()}\n"


def _value_locator(max_value: float | None) -> Any:
    """Quarters of a fixed scale (rates: 0, 25 ... 100%), else up to 4 round whole-number steps (counts)."""
    from matplotlib.ticker import LinearLocator, MaxNLocator

    return LinearLocator(5) if max_value is not None else MaxNLocator(nbins=4, integer=True, min_n_ticks=1)


def _empty(width: int, title: str) -> str:
    import matplotlib

    with matplotlib.rc_context(RC):
        fig, ax = _figure(width, 80)
        ax.set_axis_off()
        fig.suptitle(title, x=0.01, ha="left", fontsize=11, fontweight="bold")
        ax.text(0.0, 0.4, EMPTY, transform=ax.transAxes, color="#888888", fontsize=10)
        return _to_svg(fig, title)


def bar_chart(
    categories: Sequence[str],
    series: Series,
    title: str,
    *,
    stacked: bool = False,
    horizontal: bool = False,
    value_format: Callable[[float], str] = fmt_int,
    max_value: float | None = None,
    width: int = 760,
    height: int | None = None,
    colors: Sequence[str] | None = None,
) -> str:
    """Bars per category, one colour per series (grouped side by side, or stacked); totals labelled."""
    if not categories or not series:
        return _empty(width, title)
    import matplotlib
    from matplotlib.ticker import FuncFormatter

    palette = tuple(colors) if colors else PALETTE
    values = [_numbers(vals) for _, vals in series]
    n, k = len(categories), len(series)
    totals = [sum(col) for col in zip(*values, strict=True)] if stacked else [max(col) for col in zip(*values, strict=True)]
    if horizontal:
        band = 22 if stacked or k == 1 else 10 + 12 * k
        height = height or 70 + (20 if k > 1 else 0) + band * n
    else:
        height = height or 320
    with matplotlib.rc_context(RC):
        fig, ax = _figure(width, height)
        fig.suptitle(title, x=0.01, ha="left", fontsize=11, fontweight="bold")
        slot = 0.7 if stacked or k == 1 else 0.8 / k
        base = [0.0] * n
        last = None
        for s, (name, _) in enumerate(series):
            if stacked or k == 1:
                pos = list(range(n))
            else:
                pos = [i - 0.4 + slot * (s + 0.5) for i in range(n)]
            draw = ax.barh if horizontal else ax.bar
            kw = {"left" if horizontal else "bottom": base if stacked else None}
            last = draw(pos, values[s], slot, color=palette[s % len(palette)], label=name, **kw)
            if stacked:
                base = [b + v for b, v in zip(base, values[s], strict=True)]
        if last is not None and (stacked or k == 1):
            ax.bar_label(last, labels=[value_format(t) for t in totals], padding=2, fontsize=8, color="#333333")
        value_axis, cat_axis = (ax.xaxis, ax.yaxis) if horizontal else (ax.yaxis, ax.xaxis)
        top = max_value if max_value is not None else max([*totals, 0.0]) * (1.12 if stacked or k == 1 else 1.0)
        (ax.set_xlim if horizontal else ax.set_ylim)(0.0, top or 1.0)
        value_axis.set_major_locator(_value_locator(max_value))
        value_axis.set_major_formatter(FuncFormatter(lambda v, _pos: value_format(v)))
        cat_axis.set_ticks(range(n), [str(c) for c in categories])
        cat_axis.grid(False)
        ax.set_axisbelow(True)
        if horizontal:
            ax.invert_yaxis()
            ax.set_ylim(n - 0.5, -0.5)
        else:
            ax.set_xlim(-0.5, n - 0.5)
        if k > 1:
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(k, 6), fontsize=8,
                      handlelength=1.0, borderaxespad=0.2)
        return _to_svg(fig, title)


def line_chart(
    x_labels: Sequence[str],
    series: Series,
    title: str,
    *,
    value_format: Callable[[float], str] = fmt_int,
    max_value: float | None = None,
    width: int = 760,
    height: int = 300,
) -> str:
    """One line per series over ``x_labels`` (e.g. nights); ``None`` values leave gaps."""
    if not x_labels or not series:
        return _empty(width, title)
    import matplotlib
    from matplotlib.ticker import FuncFormatter

    present = [float(v) for _, vals in series for v in vals if v is not None]
    n = len(x_labels)
    with matplotlib.rc_context(RC):
        fig, ax = _figure(width, height)
        fig.suptitle(title, x=0.01, ha="left", fontsize=11, fontweight="bold")
        xs = list(range(n))
        for s, (name, vals) in enumerate(series):
            ys = [math.nan if v is None else float(v) for v in vals]
            ax.plot(xs, ys, color=PALETTE[s % len(PALETTE)], marker="o", markersize=4, linewidth=2, label=name,
                    gid=f"series-{s}")
        top = max_value if max_value is not None else max([*present, 0.0]) * 1.08
        ax.set_ylim(0.0, top or 1.0)
        ax.yaxis.set_major_locator(_value_locator(max_value))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: value_format(v)))
        every = max(1, math.ceil(n / 10))
        shown = [i for i in xs if i == n - 1 or (i % every == 0 and n - 1 - i >= every)]
        ax.set_xticks(shown, [str(x_labels[i]) for i in shown])
        ax.set_xlim(-0.5 if n == 1 else -0.02 * (n - 1), 0.5 if n == 1 else (n - 1) * 1.02)
        ax.xaxis.grid(False)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(len(series), 6), fontsize=8,
                  handlelength=1.5, borderaxespad=0.2)
        return _to_svg(fig, title)


FORMATS: dict[str, Callable[[float], str]] = {"int": fmt_int, "pct": fmt_pct}


def render(spec: dict[str, Any]) -> str:
    """A chart from a plain-data spec, as the report templates hold them.

    ``{"kind": "bar" | "line", "title": str, "categories" | "x": [labels], "series": [[name, [values]]],
    "format": "int" | "pct", ...}`` plus the keyword options of :func:`bar_chart` / :func:`line_chart`
    (``stacked``, ``horizontal``, ``max_value``, ``colors``, ``width``, ``height``).
    """
    opts = {k: v for k, v in spec.items() if k not in {"kind", "title", "categories", "x", "series", "format"}}
    fmt = FORMATS[spec.get("format", "int")]
    series = [(str(name), list(values)) for name, values in spec["series"]]
    if spec["kind"] == "bar":
        return bar_chart(spec["categories"], series, spec["title"], value_format=fmt, **opts)
    if spec["kind"] == "line":
        return line_chart(spec["x"], series, spec["title"], value_format=fmt, **opts)
    raise ValueError(f"chart spec: kind must be 'bar' or 'line', got {spec['kind']!r}")
