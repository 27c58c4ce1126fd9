"""Tiny inline-SVG charts for the HTML reports (no plotting dependency).

Two kinds: :func:`line_chart` (several series over a shared x axis, optional
target line) and :func:`bar_chart` (grouped bars per category).  Output is
an ``<svg>`` string to embed in HTML as is.
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable, List, Optional, Sequence, Tuple

__all__ = ("line_chart", "bar_chart", "PALETTE")

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")

W, H = 760, 320
ML, MR, MT, MB = 60, 20, 48, 76


def _nice_step(span: float, n: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v: float) -> str:
    if abs(v) >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.2g}" if abs(v) < 1 else f"{v:.1f}"


def _frame(title: str, y_max: float, y_label: str, y_fmt: Callable[[float], str]) -> Tuple[List[str], float]:
    step = _nice_step(y_max)
    top = max(step, math.ceil(y_max / step - 1e-9) * step)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
             f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
             f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
             f'<text x="14" y="{MT + (H - MT - MB) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 14 {MT + (H - MT - MB) / 2})">{escape(y_label)}</text>']
    v = 0.0
    while v <= top + 1e-9:
        y = _y(v, top)
        parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{ML - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_fmt(v))}</text>')
        v += step
    parts.append(f'<line x1="{ML}" x2="{ML}" y1="{MT}" y2="{H - MB}" stroke="#333"/>')
    parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{H - MB}" y2="{H - MB}" stroke="#333"/>')
    return parts, top


def _y(v: float, top: float) -> float:
    return H - MB - (H - MT - MB) * (v / top if top > 0 else 0.0)


def _legend(parts: List[str], labels: Sequence[str], colors: Sequence[str], dashed: Sequence[bool]) -> None:
    """Legend under the x axis, wrapping to a second row when needed."""
    x = ML
    y = H - 26
    for lab, col, d in zip(labels, colors, dashed):
        w = 30 + 7 * len(lab)
        if x + w > W - MR and x > ML:
            x = ML
            y += 16
        dash = ' stroke-dasharray="6 3"' if d else ""
        parts.append(f'<line x1="{x}" x2="{x + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{col}" stroke-width="3"{dash}/>')
        parts.append(f'<text x="{x + 22}" y="{y}">{escape(lab)}</text>')
        x += w


def line_chart(title: str, x: Sequence[float], series: Sequence[Tuple[str, Sequence[float]]], *,
               y_label: str = "", x_fmt: Callable[[float], str] = _fmt, y_fmt: Callable[[float], str] = _fmt,
               target: Optional[Tuple[str, float]] = None, y_max: Optional[float] = None,
               dashed: Sequence[bool] = (), step: bool = False, x_ticks: Optional[Sequence[float]] = None) -> str:
    """Lines over ``x``; ``series`` = [(label, ys)], NaN breaks a line; ``target`` = (label, y) dashed line.

    ``x_ticks``: where to label the x axis (default: 9 evenly spaced values).
    """
    xs = list(x)
    finite = [v for _, ys in series for v in ys if v == v and math.isfinite(v)]
    hi = max(finite + ([target[1]] if target else []) + [0.0])
    parts, top = _frame(title, y_max if y_max is not None else (hi * 1.05 if hi > 0 else 1.0), y_label, y_fmt)
    if not xs:
        parts.append("</svg>")
        return "".join(parts)
    x0, x1 = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] + 1

    def px(v: float) -> float:
        return ML + (W - ML - MR) * (v - x0) / (x1 - x0)

    ticks = [x0 + (x1 - x0) * k / 8 for k in range(9)] if x_ticks is None else \
        [v for v in x_ticks if x0 - 1e-9 <= v <= x1 + 1e-9]
    for v in ticks:
        parts.append(f'<text x="{px(v):.1f}" y="{H - MB + 16}" text-anchor="middle">{escape(x_fmt(v))}</text>')
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    dashes = list(dashed) + [False] * (len(series) - len(dashed))
    for (label, ys), col, d in zip(series, colors, dashes):
        segs: List[List[str]] = [[]]
        prev_y = None
        for xv, yv in zip(xs, ys):
            if yv != yv or not math.isfinite(yv):
                segs.append([])
                prev_y = None
                continue
            yy = _y(min(yv, top), top)
            if step and prev_y is not None:
                segs[-1].append(f"{px(xv):.1f},{prev_y:.1f}")
            segs[-1].append(f"{px(xv):.1f},{yy:.1f}")
            prev_y = yy
        dash = ' stroke-dasharray="6 3"' if d else ""
        for s in segs:
            if len(s) == 1:
                cx, cy = s[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{col}"/>')
            elif s:
                parts.append(f'<polyline fill="none" stroke="{col}" stroke-width="2"{dash} points="{" ".join(s)}">'
                             f'<title>{escape(label)}</title></polyline>')
    labels = [lab for lab, _ in series]
    if target is not None:
        ty = _y(target[1], top)
        parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#555" '
                     f'stroke-dasharray="2 3"/>')
        labels = labels + [target[0]]
        colors = colors + ["#555"]
        dashes = dashes + [True]
    _legend(parts, labels, colors, dashes)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Tuple[str, Sequence[float]]], *,
              y_label: str = "", y_fmt: Callable[[float], str] = _fmt, target: Optional[Tuple[str, float]] = None,
              y_max: Optional[float] = None, label_every: int = 1) -> str:
    """Grouped bars: one group per category, one bar per series; NaN bars are left out."""
    finite = [v for _, ys in series for v in ys if v == v and math.isfinite(v)]
    hi = max(finite + ([target[1]] if target else []) + [0.0])
    parts, top = _frame(title, y_max if y_max is not None else (hi * 1.05 if hi > 0 else 1.0), y_label, y_fmt)
    nc = max(len(categories), 1)
    ns = max(len(series), 1)
    gw = (W - ML - MR) / nc
    bw = gw * 0.8 / ns
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    for ci, cat in enumerate(categories):
        gx = ML + ci * gw + gw * 0.1
        for si, (label, ys) in enumerate(series):
            v = ys[ci] if ci < len(ys) else math.nan
            if v != v or not math.isfinite(v):
                continue
            y = _y(min(max(v, 0.0), top), top)
            parts.append(f'<rect x="{gx + si * bw:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" '
                         f'height="{H - MB - y:.1f}" fill="{colors[si]}"><title>{escape(label)} {escape(cat)}: '
                         f'{escape(y_fmt(v))}</title></rect>')
        if ci % max(label_every, 1) == 0:
            cx = ML + ci * gw + gw / 2
            parts.append(f'<text x="{cx:.1f}" y="{H - MB + 14}" text-anchor="end" '
                         f'transform="rotate(-40 {cx:.1f} {H - MB + 14})">{escape(cat)}</text>')
    labels = [lab for lab, _ in series]
    dashes = [False] * len(series)
    if target is not None:
        ty = _y(target[1], top)
        parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#555" '
                     f'stroke-dasharray="2 3"/>')
        labels.append(target[0])
        colors.append("#555")
        dashes.append(True)
    # legend sits under the title (rotated labels take the bottom)
    x = W - MR - sum(30 + 7 * len(lab) for lab in labels)
    y = MT - 12
    for lab, col, d in zip(labels, colors, dashes):
        if d:
            parts.append(f'<line x1="{x}" x2="{x + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{col}" '
                         f'stroke-width="2" stroke-dasharray="2 3"/>')
        else:
            parts.append(f'<rect x="{x}" y="{y - 9}" width="14" height="10" fill="{col}"/>')
        parts.append(f'<text x="{x + 22}" y="{y}">{escape(lab)}</text>')
        x += 30 + 7 * len(lab)
    parts.append("</svg>")
    return "".join(parts)
