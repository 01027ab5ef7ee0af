"""A tiny inline-SVG chart helper: bar charts (grouped, stacked, horizontal) and line charts.

The output is an ``<svg>`` element meant to be embedded in HTML5 (no ``xmlns`` URL,
no scripts, no external fonts), so a report opens offline. Text is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

PALETTE = ("#2f6db5", "#e07b39", "#3a9d5d", "#c0392b", "#8e6bbf", "#7f8c8d", "#d4a017", "#17a2b8")
FONT = "font-family=\"'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif\""

Series = Sequence[tuple[str, Sequence[float | None]]]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def fmt_int(v: float) -> str:
    """``1234.0`` -> ``1,234``."""
    return f"{v:,.0f}"


def fmt_pct(v: float) -> str:
    """``0.873`` -> ``87.3%``."""
    return f"{v * 100:.1f}%"


def nice_max(value: float, ticks: int = 4) -> float:
    """A round axis maximum at or above ``value`` that splits into ``ticks`` round steps.

    Steps are 1, 1.5, 2, 2.5, 3 or 5 x 10^k, whole numbers of at least 1 (count axes get whole-number ticks).
    """
    if value <= 0 or math.isnan(value):
        return float(ticks)
    raw = value / ticks
    exp = 10 ** math.floor(math.log10(raw))
    steps = [m * exp for m in (1, 1.5, 2, 2.5, 3, 5, 10) if float(m * exp).is_integer() or m * exp < 1]
    step = next(st for st in steps if raw <= st * (1 + 1e-9))
    return max(step, 1.0) * ticks


def _legend(names: Sequence[str], x: float, y: float, colors: Sequence[str] = PALETTE) -> list[str]:
    out, cx = [], x
    for i, name in enumerate(names):
        out.append(f'<rect x="{cx:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colors[i % len(colors)]}"/>')
        out.append(f'<text x="{cx + 14:.1f}" y="{y:.1f}" font-size="12">{_e(name)}</text>')
        cx += 24 + 13 * len(name)
    return out


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    return "\n".join([
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT}>',
        f"<title>{_e(title)}</title>",
        f'<text x="10" y="20" font-size="15" font-weight="bold">{_e(title)}</text>',
        *body,
        "</svg>",
    ])


def _empty(width: int, title: str) -> str:
    return _frame(width, 70, title, ['<text x="10" y="50" font-size="13" fill="#888">暂无数据</text>'])


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
    """Bars per category, one colour per series (grouped side by side, or stacked)."""
    palette = tuple(colors) if colors else PALETTE
    if not categories or not series:
        return _empty(width, title)
    values = [[0.0 if v is None else float(v) for v in vals] for _, vals in series]
    totals = [sum(col) for col in zip(*values, strict=True)] if stacked else [max(col) for col in zip(*values, strict=True)]
    top = max_value if max_value is not None else nice_max(max(totals) if totals else 0.0)
    top = top or 1.0
    legend = len(series) > 1
    if horizontal:
        label_w = min(220, 14 + 13 * max(len(c) for c in categories))
        band = 22 if stacked or len(series) == 1 else 10 + 12 * len(series)
        top_pad = 34 + (20 if legend else 0)
        height = height or top_pad + band * len(categories) + 30
        plot_w = width - label_w - 70
        body: list[str] = _legend([n for n, _ in series], label_w, 44, palette) if legend else []
        for t in range(5):
            gx = label_w + plot_w * t / 4
            body.append(f'<line x1="{gx:.1f}" y1="{top_pad - 4}" x2="{gx:.1f}" y2="{height - 26}" stroke="#e3e3e3"/>')
            body.append(f'<text x="{gx:.1f}" y="{height - 10}" font-size="11" text-anchor="middle" fill="#555">'
                        f"{_e(value_format(top * t / 4))}</text>")
        for i, cat in enumerate(categories):
            y0 = top_pad + i * band
            body.append(f'<text x="{label_w - 6}" y="{y0 + band / 2 + 4:.1f}" font-size="12" text-anchor="end">'
                        f"{_e(cat)}</text>")
            x = float(label_w)
            for s, (name, _) in enumerate(series):
                v = values[s][i]
                w = plot_w * min(v, top) / top
                colour = palette[s % len(palette)]
                if stacked:
                    rect_y, rect_h = y0 + 3, band - 6
                    rx = x
                    x += w
                else:
                    rect_h = (band - 6) / len(series)
                    rect_y, rx = y0 + 3 + s * rect_h, float(label_w)
                body.append(f'<rect x="{rx:.1f}" y="{rect_y:.1f}" width="{w:.1f}" height="{rect_h:.1f}" '
                            f'fill="{colour}"><title>{_e(cat)} {_e(name)}: {_e(value_format(v))}</title></rect>')
            end = label_w + plot_w * min(totals[i], top) / top
            body.append(f'<text x="{end + 4:.1f}" y="{y0 + band / 2 + 4:.1f}" font-size="11" fill="#333">'
                        f"{_e(value_format(totals[i]))}</text>")
        return _frame(width, height, title, body)

    height = height or 320
    left, right, top_pad, bottom = 56, 16, 34 + (20 if legend else 0), 64
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    body = _legend([n for n, _ in series], left, 44, palette) if legend else []
    for t in range(5):
        gy = top_pad + plot_h - plot_h * t / 4
        body.append(f'<line x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}" stroke="#e3e3e3"/>')
        body.append(f'<text x="{left - 6}" y="{gy + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
                    f"{_e(value_format(top * t / 4))}</text>")
    band = plot_w / len(categories)
    for i, cat in enumerate(categories):
        x0 = left + i * band
        y = float(top_pad + plot_h)
        bar_w = band * 0.7 if stacked else band * 0.8 / len(series)
        for s, (name, _) in enumerate(series):
            v = values[s][i]
            h = plot_h * min(v, top) / top
            colour = palette[s % len(palette)]
            if stacked:
                y -= h
                bx, by = x0 + band * 0.15, y
            else:
                bx, by = x0 + band * 0.1 + s * bar_w, top_pad + plot_h - h
            body.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                        f"<title>{_e(cat)} {_e(name)}: {_e(value_format(v))}</title></rect>")
        if stacked or len(series) == 1:
            ty = top_pad + plot_h - plot_h * min(totals[i], top) / top - 4
            body.append(f'<text x="{x0 + band / 2:.1f}" y="{ty:.1f}" font-size="11" text-anchor="middle" fill="#333">'
                        f"{_e(value_format(totals[i]))}</text>")
        body.append(f'<text x="{x0 + band / 2:.1f}" y="{top_pad + plot_h + 16}" font-size="12" '
                    f'text-anchor="middle">{_e(cat)}</text>')
    body.append(f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" stroke="#888"/>')
    return _frame(width, height, title, body)


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
    present = [float(v) for _, vals in series for v in vals if v is not None]
    top = max_value if max_value is not None else nice_max(max(present) if present else 0.0)
    top = top or 1.0
    left, right, top_pad, bottom = 56, 24, 54, 56
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    body = _legend([n for n, _ in series], left, 44)
    for t in range(5):
        gy = top_pad + plot_h - plot_h * t / 4
        body.append(f'<line x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}" stroke="#e3e3e3"/>')
        body.append(f'<text x="{left - 6}" y="{gy + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
                    f"{_e(value_format(top * t / 4))}</text>")
    n = len(x_labels)
    step_x = plot_w / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (i * step_x if n > 1 else plot_w / 2)
        return x, top_pad + plot_h - plot_h * min(v, top) / top

    every = max(1, math.ceil(n / 10))
    for i, lab in enumerate(x_labels):
        if i == n - 1 or (i % every == 0 and n - 1 - i >= every):
            x, _ = xy(i, 0)
            anchor = "end" if i == n - 1 and n > 1 else ("start" if i == 0 and n > 1 else "middle")
            body.append(f'<text x="{x:.1f}" y="{top_pad + plot_h + 16}" font-size="11" text-anchor="{anchor}">'
                        f"{_e(lab)}</text>")
    for s, (name, vals) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(vals):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x, y = xy(i, float(v))
            segment.append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                        f"<title>{_e(x_labels[i])} {_e(name)}: {_e(value_format(float(v)))}</title></circle>")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                body.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    body.append(f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" stroke="#888"/>')
    return _frame(width, height, title, body)
