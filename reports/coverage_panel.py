"""The overview's lineage-coverage panel: each kind's share of traced assets, and its trend.

Pure: from the figures stored with past checks (`catalog.coverage.trend`) to
what the template lays out, a row per kind with its latest figure and a small
inline SVG line of the percentages, oldest first (no script, no CDN).
"""

from __future__ import annotations

from typing import Any

from catalog.coverage import KINDS

#: Size of a trend line, in SVG units.
WIDTH, HEIGHT = 120, 28


def _points(percents: list[float]) -> str:
    if len(percents) == 1:
        percents = percents * 2
    step = WIDTH / (len(percents) - 1)
    return " ".join(
        f"{i * step:.1f},{HEIGHT - 2 - p / 100 * (HEIGHT - 4):.1f}" for i, p in enumerate(percents)
    )


def panel(trend: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per kind that has figures: latest assets, traced, percent, trend line."""
    rows = []
    for kind in KINDS:
        figures = trend.get(kind) or []
        if not figures:
            continue
        latest = figures[-1]
        percents = [float(f["percent"]) for f in figures]
        rows.append(
            {
                "kind": kind,
                "label": kind.replace("_", " "),
                "assets": latest["assets"],
                "traced": latest["traced"],
                "percent": latest["percent"],
                "checks": len(figures),
                "first": percents[0],
                "points": _points(percents),
                "width": WIDTH,
                "height": HEIGHT,
                "low": latest["percent"] < 100,
            }
        )
    return rows
