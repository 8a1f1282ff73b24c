"""Validation toolkit: ROC/AUC with pROC's conventions, DeLong, exact CIs, AUC comparison,
segmentation metrics, and paper-style study tables and figures.

See ``docs/validation.md``. Everything here works on plain arrays and tables; nothing needs the
imaging pipeline.
"""

from pneumolens.validate.bootstrap import bootstrap_aucs, bootstrap_ci, percentile_ci
from pneumolens.validate.compare import (
    AucComparison,
    adjust_pvalues,
    bootstrap_test,
    delong_paired,
    delong_unpaired,
)
from pneumolens.validate.delong import (
    Placements,
    delong_ci,
    delong_variance,
    placements,
    roc_placements,
)
from pneumolens.validate.operating import (
    OperatingPoint,
    operating_point,
    youden_threshold,
)
from pneumolens.validate.proportions import (
    DiagnosticMetrics,
    Proportion,
    clopper_pearson,
    diagnostic_metrics,
)
from pneumolens.validate.roc import (
    DirectionWarning,
    RocCurve,
    partial_auc,
    roc_curve,
    roc_from_groups,
)
from pneumolens.validate.segmentation import (
    SegmentationMetrics,
    hd95,
    segmentation_metrics,
    summarize,
)

__all__ = [
    "AucComparison",
    "DiagnosticMetrics",
    "DirectionWarning",
    "OperatingPoint",
    "Placements",
    "Proportion",
    "RocCurve",
    "SegmentationMetrics",
    "adjust_pvalues",
    "bootstrap_aucs",
    "bootstrap_ci",
    "bootstrap_test",
    "clopper_pearson",
    "delong_ci",
    "delong_paired",
    "delong_unpaired",
    "delong_variance",
    "diagnostic_metrics",
    "hd95",
    "operating_point",
    "partial_auc",
    "percentile_ci",
    "placements",
    "roc_curve",
    "roc_from_groups",
    "roc_placements",
    "segmentation_metrics",
    "summarize",
    "youden_threshold",
]
