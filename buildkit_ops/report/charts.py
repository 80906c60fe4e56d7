"""Charts as inline SVG, for a page that fetches nothing (no scripts, no fonts, no styles from elsewhere). Every
label and name is escaped: a client's name or an image from a build record is text, never markup. Each series
is drawn in its own colour from PALETTE (a reader, or a test, can tell the series apart)."""
from __future__ import annotations

from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
W, H, LEFT, BOTTOM, TOP = 560, 220, 48, 28, 28


def _axis(title: str, labels: list[str], top: float, unit: str) -> list[str]:
    out = [f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
           f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - 8}" y2="{H - BOTTOM}" stroke="#888"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#888"/>',
           f'<text x="4" y="{TOP + 4}" font-size="10">{escape(_fmt(top, unit))}</text>',
           f'<text x="4" y="{H - BOTTOM}" font-size="10">0</text>']
    step = max(1, len(labels) // 6)
    for i in range(0, len(labels), step):
        out.append(f'<text x="{_x(i, len(labels)):.1f}" y="{H - 10}" font-size="10" text-anchor="middle">'
                   f'{escape(labels[i])}</text>')
    return out


def _fmt(v: float, unit: str) -> str:
    if unit == "%":
        return f"{v * 100:.0f}%"
    if unit == "s":
        return f"{v:.1f} s"
    if unit == "B":
        return f"{v / 1e9:.1f} GB" if v >= 1e8 else f"{v / 1e6:.1f} MB"
    return f"{v:g}"


def _x(i: int, n: int) -> float:
    return float(LEFT + (W - LEFT - 16) * (i + 0.5) / max(n, 1))


def _y(v: float, top: float) -> float:
    return float(H - BOTTOM - (H - BOTTOM - TOP) * (v / top if top else 0))


def _legend(names: list[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        x = LEFT + 8 + 130 * (i % 4)
        out.append(f'<rect x="{x}" y="{H + 4 + 14 * (i // 4)}" width="10" height="10" fill="{PALETTE[i % 8]}"/>'
                   f'<text x="{x + 14}" y="{H + 13 + 14 * (i // 4)}" font-size="11">{escape(name[:18])}</text>')
    return out


def _svg(body: list[str], legend_rows: int) -> str:
    height = H + 8 + 14 * legend_rows
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" '
            f'role="img">' + "".join(body) + "</svg>")


def lines(title: str, labels: list[str], series: dict[str, list[float | None]], unit: str = "") -> str:
    """One line per series over `labels` (days); a missing value breaks nothing, it is just not drawn."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = (max(values) if values else 0) * 1.1 or 1.0
    if unit == "%":
        top = 1.0
    body = _axis(title, labels, top, unit)
    for i, (name, vs) in enumerate(series.items()):
        pts = " ".join(f"{_x(j, len(labels)):.1f},{_y(v, top):.1f}" for j, v in enumerate(vs) if v is not None)
        colour = PALETTE[i % 8]
        shown = ",".join("" if v is None else f"{v:g}" for v in vs)   # (the figures, for a reader's tools)
        body.append(f'<polyline class="series" data-series="{escape(name)}" data-values="{shown}" fill="none" '
                    f'stroke="{colour}" stroke-width="3" points="{pts}"/>')
        body += [f'<circle cx="{_x(j, len(labels)):.1f}" cy="{_y(v, top):.1f}" r="4" fill="{colour}"/>'
                 for j, v in enumerate(vs) if v is not None]
    legend = _legend(list(series))
    return _svg(body + legend, (len(series) + 3) // 4)


def bars(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """One horizontal bar per item (the cache, its GC limit, the disk), each in its colour."""
    top = max((v for _, v in items), default=0) or 1.0
    body = [f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (name, v) in enumerate(items):
        y = TOP + 8 + i * 40
        width = (W - LEFT - 120) * v / top
        body.append(f'<rect class="series" data-series="{escape(name)}" x="{LEFT}" y="{y}" width="{width:.1f}" '
                    f'height="24" fill="{PALETTE[i % 8]}"/>')
        body.append(f'<text x="{LEFT + width + 6:.1f}" y="{y + 16}" font-size="11">{escape(name)}: '
                    f'{escape(_fmt(v, unit))}</text>')
    return _svg(body, 0)
