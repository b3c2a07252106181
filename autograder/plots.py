"""The score histogram saved next to grades.csv."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .results import SubmissionResult


def score_histogram(results: Sequence[SubmissionResult], path: Path) -> None:
    """One panel per assignment: how many students got each fraction of the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assignments = sorted({r.assignment for r in results})
    fig, axes = plt.subplots(1, len(assignments), figsize=(4 * len(assignments), 3), squeeze=False)
    for ax, assignment in zip(axes[0], assignments):
        scores = [100 * r.score / r.max_score if r.max_score else 0 for r in results if r.assignment == assignment]
        ax.hist(scores, bins=[i * 10 for i in range(11)], color="#3b6ea5", edgecolor="white")
        ax.set_title(f"{assignment} (n={len(scores)})", fontsize=9)
        ax.set_xlabel("score (% of points)")
        ax.set_ylabel("students")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
