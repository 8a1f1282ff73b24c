"""The 3D inserted-lesion table printed for the model card."""

from __future__ import annotations

import math

from pneumolens.train.evaluate import inserted_table


def _row(volume: str, pattern: str, dice: float) -> dict:
    scores = {"dice": dice, "dice_ggo": math.nan, "dice_consolidation": dice, "predicted_ml": 1.0}
    return {"volume": volume, "pattern": pattern, "truth_ml": 10.0, "truth_inside_lungs": 0.5,
            "model": scores, "model_clean_lungs": scores, "density": {**scores, "dice": 0.1}}


def test_table_groups_by_background_and_pattern() -> None:
    rows = [_row("a", "lobar", 0.8), _row("a", "lobar", 0.6), _row("b", "peripheral", 0.4)]
    mean = {k: {"dice": 0.6} for k in ("model", "model_clean_lungs", "density")}
    table = inserted_table({"cases": rows, "mean": {**mean, "truth_inside_lungs": 0.5}}).splitlines()
    assert len(table) == 2 + 2 + 1  # header, rule, two groups, total
    assert table[2].startswith("| a | lobar | 2 | 10 | 50 % | 0.70 | 0.70 | 0.10 |")
    assert table[3].startswith("| b | peripheral | 1 |")
    assert "**0.60**" in table[-1]


def test_validation_only_never_reads_the_test_blocks(monkeypatch) -> None:
    """`--validation-only` is for choices made before the test blocks are read: it must not touch them."""
    from pathlib import Path

    from pneumolens import runtime
    from pneumolens.train import evaluate as E

    monkeypatch.setattr(runtime, "prepare_for_analyses", lambda: None)  # keep this process's malloc as it is
    calls = []
    monkeypatch.setattr(E, "evaluate_training_and_validation", lambda model, root, tta=True: calls.append(tta) or {"zenodo_validation": {}})

    def forbidden(*args, **kwargs):
        raise AssertionError("a test block was read")

    for name in ("evaluate_zenodo", "evaluate_medseg", "load_p002", "evaluate_p002", "evaluate_normal", "evaluate_inserted_3d", "time_150"):
        monkeypatch.setattr(E, name, forbidden)
    out = E.evaluate(None, Path("/nonexistent"), validation_only=True, tta=False)
    assert calls == [False]
    assert out["flip_tta"] is False and set(out) == {"model", "sha256", "date", "flip_tta", "zenodo_validation"}
    assert E.main(["--validation-only", "--no-tta", "--data", "/nonexistent"]) == 0
    assert calls == [False, False]


def test_fuse_density_adds_density_voxels_only_where_the_model_is_unsure() -> None:
    import numpy as np

    from pneumolens.masks import LesionMasks
    from pneumolens.train.evaluate import fuse_density

    model_labels = np.array([[[1, 0, 0, 0, 2]]], np.uint8)
    model_prob = np.array([[[0.9, 0.3, 0.1, 0.3, 0.8]]], np.float32)
    density_labels = np.array([[[0, 1, 1, 0, 1]]], np.uint8)
    model = LesionMasks(model_labels, model_prob, "model:x")
    density = LesionMasks(density_labels, density_labels.astype(np.float32), "density")
    fused = fuse_density(model, density, 0.2)
    # voxel 1: density GGO, model 0.3 >= 0.2 -> added; voxel 2: model 0.1 < 0.2 -> not;
    # voxel 3: density says nothing; voxels 0 and 4: the model's own labels stay
    assert fused.tolist() == [[[1, 1, 0, 0, 2]]]
    assert fuse_density(model, density, 0.05).tolist() == [[[1, 1, 1, 0, 2]]]
