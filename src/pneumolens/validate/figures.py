"""ROC figures for papers: one curve per score (or per subgroup), the operating point marked.

Drawn with matplotlib's object API on an Agg canvas (no pyplot state, no display needed), saved
as PNG (300 dpi) and SVG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pneumolens.validate.operating import OperatingPoint
from pneumolens.validate.roc import RocCurve

# Colour-blind-safe palette (Okabe & Ito 2008).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


@dataclass(frozen=True)
class CurveSpec:
    """One curve of a figure."""

    label: str
    roc: RocCurve
    auc_ci: tuple[float, float] | None = None
    operating_point: OperatingPoint | None = None


def _legend(c: CurveSpec) -> str:
    text = f"{c.label}: AUC {c.roc.auc:.3f}"
    if c.auc_ci is not None and all(x is not None and math.isfinite(x) for x in c.auc_ci):
        text += f" ({c.auc_ci[0]:.3f}\u2013{c.auc_ci[1]:.3f})"
    return text


def _point_legend(op: OperatingPoint) -> str:
    sign = "\u2265" if op.direction == "<" else "\u2264"
    se, sp = op.metrics.sensitivity.value, op.metrics.specificity.value
    rule = op.rule.replace("youden", "Youden")
    return f"  {rule} cut-off {sign}{op.threshold:.3g}: Se {se:.2f}, Sp {sp:.2f}"


def plot_rocs(curves: list[CurveSpec], *, title: str, path_stem: str | Path) -> list[Path]:
    """Draw the curves in one figure and save ``<path_stem>.png`` and ``<path_stem>.svg``.

    The x axis is 1 - specificity, the y axis sensitivity; the diagonal is the chance line; each
    operating point is a filled marker of its curve's colour.

    Returns
    -------
    list of Path
        The files written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=0.8, label="_chance")
    for i, c in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(
            1.0 - c.roc.specificity,
            c.roc.sensitivity,
            color=colour,
            linewidth=1.6,
            label=_legend(c),
        )
        op = c.operating_point
        if op is not None:
            se, sp = op.metrics.sensitivity.value, op.metrics.specificity.value
            ax.plot(
                [1.0 - sp],
                [se],
                marker="o",
                markersize=7,
                color=colour,
                markeredgecolor="black",
                linestyle="none",
                label=_point_legend(op),
            )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 \u2212 specificity")
    ax.set_ylabel("Sensitivity")
    ax.set_title(title, fontsize=10)
    ax.grid(True, linewidth=0.3, color="#dddddd")
    ax.legend(loc="lower right", fontsize=7, frameon=True)
    # Fixed margins instead of tight_layout: as good for one square axes, and much faster.
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.1, top=0.93)
    stem = Path(path_stem)
    written = []
    for ext, kwargs in ((".png", {"dpi": 300, "pil_kwargs": {"compress_level": 4}}), (".svg", {})):
        path = stem.parent / f"{stem.name}{ext}"
        fig.savefig(path, **kwargs)
        written.append(path)
    return written
