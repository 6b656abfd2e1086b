"""The leaderboards' figures as PNG bytes (matplotlib, Agg): same data in, same bytes out.

Three figures, after the paper's: accuracy against learning rate for each method and batch size
(the ablation grid), accuracy against training step (Figure 1, from ``--eval-every``), and the
histogram of the probabilities a model gives its training targets (Figure 2, base vs SFT vs DFT).
PNG metadata (matplotlib's version string) is left out so a re-render changes no byte.

>>> png = token_probabilities([("base", {"edges": [0.0, 0.5, 1.0], "counts": [3, 1]})], "demo")
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display; the same renderer on every machine

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

# One colour per method, the same in every figure.
COLOURS = {"base": "#7f7f7f", "SFT": "#1f77b4", "DFT": "#d62728"}
OTHER_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
Series = tuple[str, list[tuple[float, float, float]]]  # label, [(x, value, stderr)]


def colour(label: str, index: int = 0) -> str:
    """The method's colour for ``"SFT"`` or ``"SFT, batch 32"``; a DFT variant or another series
    takes the ``index``-th spare colour."""
    return COLOURS.get(label.split(",")[0].strip(), OTHER_COLOURS[index % len(OTHER_COLOURS)])


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _lines(axis, series: Sequence[Series], styles: Sequence[str] | None = None) -> None:
    for index, (label, points) in enumerate(series):
        xs, ys, errors = zip(*sorted(points)) if points else ((), (), ())
        axis.errorbar(
            xs,
            [100 * y for y in ys],
            yerr=[100 * e for e in errors],
            label=label,
            color=colour(label, index),
            linestyle=styles[index] if styles else "-",
            marker="o",
            markersize=4,
            capsize=3,
        )
    axis.grid(alpha=0.3)


def accuracy_panels(
    panels: Sequence[tuple[str, Sequence[Series]]],
    xlabel: str,
    title: str,
    log_x: bool = False,
    styles: Sequence[str] | None = None,
    ylabel: str = "accuracy (%)",
) -> bytes:
    """One panel per ``(panel title, series)``, a fraction shown in percent on the y axis."""
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, (name, series) in zip(axes[0], panels):
        _lines(axis, series, styles)
        if log_x:
            axis.set_xscale("log")
        axis.set_title(name)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return _png(figure)


def token_probabilities(histograms: Sequence[tuple[str, dict]], title: str) -> bytes:
    """Side-by-side bars: the fraction of training-target tokens in each probability bin, per model.
    The y axis is logarithmic: the low-probability bins the paper discusses hold few tokens."""
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 1.0 / max(1, len(histograms))
    for index, (label, histogram) in enumerate(histograms):
        counts, edges = histogram["counts"], histogram["edges"]
        total = max(1, sum(counts))
        bin_width = edges[1] - edges[0]
        lefts = [edges[i] + bin_width * width * index for i in range(len(counts))]
        axis.bar(
            lefts,
            [c / total for c in counts],
            width=bin_width * width,
            align="edge",
            label=label if "mean" not in histogram else f"{label} (mean p {histogram['mean']:.2f})",
            color=colour(label, index),
        )
    axis.set_yscale("log")
    axis.set_xlim(0, 1)
    axis.set_xlabel("probability of the training target token")
    axis.set_ylabel("fraction of tokens")
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return _png(figure)
