"""Segmentation evaluation over folders of masks: pairs matched by file name, per-case and
summary tables.

Supported files: NIfTI (``.nii``, ``.nii.gz``; spacing from the header, the two grids must agree)
and PNG (2D; palette images give their indices, so multi-class PNGs keep their labels; spacing 1
pixel unless given). A prediction and a truth pair up when their names without extension are
equal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pneumolens.analysis import finite_or_none
from pneumolens.errors import InputError
from pneumolens.export.writer import files_in, output_dir
from pneumolens.io.images import read_image
from pneumolens.validate.segmentation import (
    METRICS,
    MetricSummary,
    SegmentationMetrics,
    segmentation_metrics,
    summarize,
)
from pneumolens.validate.tables import fmt_num, to_csv, to_markdown

SUFFIXES = (".nii.gz", ".nii", ".png")


def case_name(path: Path) -> str | None:
    """Name of a mask file without its extension, or None if not a supported file."""
    lower = path.name.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def _listing(folder: Path, role: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise InputError(f"the {role} folder does not exist", where=folder, todo="check the path")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        name = case_name(p)
        if name is None or not p.is_file():
            continue
        if name in files:
            raise InputError(
                f"two {role} files for case {name!r}: {files[name].name} and {p.name}",
                where=folder,
                todo="keep one file per case",
            )
        files[name] = p
    return files


def find_pairs(
    pred_dir: Path, truth_dir: Path
) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """Pairs ``(name, pred, truth)``, and the names found only in pred / only in truth."""
    pred = _listing(Path(pred_dir), "prediction")
    truth = _listing(Path(truth_dir), "truth")
    common = sorted(set(pred) & set(truth))
    return (
        [(n, pred[n], truth[n]) for n in common],
        sorted(set(pred) - set(truth)),
        sorted(set(truth) - set(pred)),
    )


def read_mask(path: Path) -> tuple[np.ndarray, tuple[float, ...] | None, np.ndarray | None]:
    """Mask array, voxel spacing (None for PNG) and affine (None for PNG)."""
    try:
        if path.name.lower().endswith(".png"):
            arr = read_image(path, mode="labels")
            if arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
                arr = arr[..., 0]
            elif arr.ndim == 3:  # RGB(A): only grey stored as colour is a mask
                rgb = arr[..., :3]
                if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                    raise InputError(
                        "colour PNG masks are not supported",
                        where=path,
                        todo="save masks as greyscale or palette PNG",
                    )
                arr = rgb[..., 0]
            return arr, None, None
        import nibabel

        img = nibabel.load(str(path))
        arr = np.asanyarray(img.dataobj)
        if arr.ndim == 4 and arr.shape[3] == 1:
            arr = arr[..., 0]
        return arr, tuple(float(z) for z in img.header.get_zooms()[: arr.ndim]), img.affine
    except InputError:
        raise
    except (OSError, ValueError, EOFError, _image_file_error()) as exc:
        raise InputError(
            f"cannot read the mask ({type(exc).__name__}: {exc})",
            where=path,
            todo="check that the file is a valid NIfTI or PNG",
        ) from exc


def _image_file_error() -> type[Exception]:
    from nibabel.filebasedimages import ImageFileError

    return ImageFileError


@dataclass(frozen=True)
class SegCase:
    name: str
    label: str
    metrics: SegmentationMetrics


@dataclass(frozen=True)
class SegStudy:
    cases: tuple[SegCase, ...]
    summary: dict[str, dict[str, MetricSummary]]  # label -> metric -> summary
    only_pred: tuple[str, ...]
    only_truth: tuple[str, ...]
    both_empty: str


def evaluate_folders(
    pred_dir: str | Path,
    truth_dir: str | Path,
    *,
    labels: list[int] | None = None,
    spacing: tuple[float, ...] | None = None,
    both_empty: Literal["one", "nan"] = "one",
    strict: bool = False,
    level: float = 0.95,
) -> SegStudy:
    """Evaluate every prediction against its truth.

    Parameters
    ----------
    labels
        Label values to evaluate separately (``mask == value``); None: foreground = non-zero.
    spacing
        Overrides the files' spacing (required for mm distances with PNG).
    strict
        Raise when a case has a prediction or a truth but not both (otherwise they are listed in
        the report and left out).
    """
    pairs, only_pred, only_truth = find_pairs(Path(pred_dir), Path(truth_dir))
    if not pairs:
        raise InputError(
            "no prediction/truth pair found (files are matched by name without extension)",
            where=f"{pred_dir} and {truth_dir}",
            todo="name each prediction like its truth file (.nii, .nii.gz or .png)",
        )
    if strict and (only_pred or only_truth):
        raise InputError(
            f"{len(only_truth)} truth file(s) without prediction and {len(only_pred)} prediction(s) without truth",
            where=f"{pred_dir} and {truth_dir}",
            todo="provide the missing files, or drop --strict to evaluate the pairs found",
        )
    cases = []
    for name, p_path, t_path in pairs:
        pred, _, p_affine = read_mask(p_path)
        truth, t_spacing, t_affine = read_mask(t_path)
        if pred.shape != truth.shape:
            raise InputError(
                f"case {name!r}: prediction shape {pred.shape} differs from truth shape {truth.shape}",
                where=p_path,
                todo="resample the prediction onto the truth grid",
            )
        if (
            p_affine is not None
            and t_affine is not None
            and not np.allclose(p_affine, t_affine, atol=1e-3)
        ):
            raise InputError(
                f"case {name!r}: prediction and truth are on different grids (affines differ)",
                where=p_path,
                todo="resample the prediction onto the truth grid",
            )
        case_spacing = spacing or t_spacing
        for value in labels or [None]:
            if value is None:
                p_mask, t_mask, label = pred != 0, truth != 0, "foreground"
            else:
                p_mask, t_mask, label = pred == value, truth == value, str(value)
            metrics = segmentation_metrics(
                p_mask, t_mask, spacing=case_spacing, both_empty=both_empty
            )
            cases.append(SegCase(name, label, metrics))
    summary: dict[str, dict[str, MetricSummary]] = {}
    for label in dict.fromkeys(c.label for c in cases):
        rows = [c.metrics for c in cases if c.label == label]
        summary[label] = {m: summarize([getattr(r, m) for r in rows], level=level) for m in METRICS}
    return SegStudy(tuple(cases), summary, tuple(only_pred), tuple(only_truth), both_empty)


def _fmt_summary(s: MetricSummary, digits: int) -> dict[str, str]:
    return {
        "N": str(s.n),
        "Mean ± SD": f"{fmt_num(s.mean, digits)} ± {fmt_num(s.sd, digits)}",
        "Median [IQR]": f"{fmt_num(s.median, digits)} [{fmt_num(s.q1, digits)}\u2013{fmt_num(s.q3, digits)}]",
        "95% CI of mean": f"{fmt_num(s.ci[0], digits)}\u2013{fmt_num(s.ci[1], digits)}",
    }


def _clean(x: float) -> float | None:
    return finite_or_none(float(x))


def write_seg_study(study: SegStudy, out: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``per_case.csv``, ``summary.csv``, ``summary.md`` and ``seg_report.json`` into ``out``.

    Through :func:`pneumolens.export.writer.output_dir` (new or empty ``out``, or replaced as a
    whole with ``overwrite``; nothing partial on failure).
    """
    with output_dir(out, overwrite=overwrite) as tmp:
        per_case = [
            {
                "case": c.name,
                "label": c.label,
                **{
                    m: ""
                    if not np.isfinite(getattr(c.metrics, m))
                    else f"{getattr(c.metrics, m):.6g}"
                    for m in METRICS
                },
                "truth_voxels": str(c.metrics.truth_voxels),
                "pred_voxels": str(c.metrics.pred_voxels),
                "empty": c.metrics.empty,
            }
            for c in study.cases
        ]
        (tmp / "per_case.csv").write_text(to_csv(per_case), encoding="utf-8")
        summary_rows = [
            {"Label": label, "Metric": m, **_fmt_summary(s, 2 if m == "hd95" else 3)}
            for label, metrics in study.summary.items()
            for m, s in metrics.items()
        ]
        (tmp / "summary.csv").write_text(to_csv(summary_rows), encoding="utf-8")
        (tmp / "summary.md").write_text(to_markdown(summary_rows), encoding="utf-8")
        report = {
            "both_empty": study.both_empty,
            "n_cases": len({c.name for c in study.cases}),
            "only_prediction": list(study.only_pred),
            "only_truth": list(study.only_truth),
            "summary": {
                label: {
                    m: {
                        "n": s.n,
                        "mean": _clean(s.mean),
                        "sd": _clean(s.sd),
                        "median": _clean(s.median),
                        "q1": _clean(s.q1),
                        "q3": _clean(s.q3),
                        "ci": [_clean(s.ci[0]), _clean(s.ci[1])],
                    }
                    for m, s in metrics.items()
                }
                for label, metrics in study.summary.items()
            },
            "cases": [
                {
                    "case": c.name,
                    "label": c.label,
                    **{m: _clean(getattr(c.metrics, m)) for m in METRICS},
                    "empty": c.metrics.empty or None,
                }
                for c in study.cases
            ],
        }
        (tmp / "seg_report.json").write_text(
            json.dumps(report, indent=2, allow_nan=False), encoding="utf-8"
        )
    return files_in(out)
