"""The score histogram saved next to grades.csv (``files.write_reports``), as SVG: any browser shows it, and no
plotting library is imported."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from autograder.reporting.results import SubmissionResult

PANEL_W, PANEL_H, MARGIN = 320, 220, 44
BINS = 10


def score_histogram(results: Sequence[SubmissionResult]) -> str:
    """One panel per assignment: how many students got each tenth of the points (0-10 %, ..., 90-100 %)."""
    assignments = sorted({r.assignment for r in results})
    width = PANEL_W * len(assignments)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PANEL_H}" '
             f'viewBox="0 0 {width} {PANEL_H}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{PANEL_H}" fill="white"/>']
    for i, assignment in enumerate(assignments):
        scores = [r.score / r.max_score if r.max_score else 0.0 for r in results if r.assignment == assignment]
        parts.append(_panel(i * PANEL_W, assignment, scores))
    parts.append("</svg>\n")
    return "\n".join(parts)


def _panel(x0: int, title: str, fractions: list[float]) -> str:
    counts = [0] * BINS
    for f in fractions:
        counts[min(BINS - 1, max(0, int(f * BINS)))] += 1
    top = max(counts) or 1
    plot_w, plot_h = PANEL_W - MARGIN - 12, PANEL_H - 2 * MARGIN
    left, bottom = x0 + MARGIN, PANEL_H - MARGIN
    bar = plot_w / BINS
    out = [f'<text x="{x0 + PANEL_W / 2}" y="18" text-anchor="middle" font-size="12">'
           f'{escape(title)} (n={len(fractions)})</text>',
           f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#333"/>',
           f'<line x1="{left}" y1="{bottom}" x2="{left}" y2="{bottom - plot_h}" stroke="#333"/>']
    for b, count in enumerate(counts):
        h = plot_h * count / top
        out.append(f'<rect x="{left + b * bar + 1:.1f}" y="{bottom - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                   f'fill="#3b6ea5"><title>{10 * b}-{10 * (b + 1)} %: {count}</title></rect>')
    for tick in range(0, 101, 20):
        x = left + plot_w * tick / 100
        out.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{tick}</text>')
    for tick in sorted({0, top // 2, top}):
        y = bottom - plot_h * tick / top
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{PANEL_H - 12}" text-anchor="middle">score (% of points)</text>')
    out.append(f'<text x="{x0 + 12}" y="{bottom - plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 {x0 + 12} {bottom - plot_h / 2})">students</text>')
    return "\n".join(out)
