"""The benchmark's plots: one PNG of side-by-side panels from figures in its JSON (#20).
matplotlib comes with the `perf` extra (`pip install -e ".[perf]"`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

Panel = tuple[str, Sequence[float], float | None]  # title, values, a target line (or none)


def panels(path: Path, xlabel: str, xs: Sequence[float], shown: Sequence[Panel]) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no screen on the machines this runs on
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(shown), figsize=(4 * len(shown), 3.2), squeeze=False)
    for axis, (title, values, target) in zip(axes[0], shown, strict=True):
        axis.plot(xs, values, marker="o")
        if target is not None:
            axis.axhline(target, linestyle=":", color="red", label="target")
            axis.legend(fontsize="small")
        axis.set_title(title)
        axis.set_xlabel(xlabel)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
