"""Training recipe of the lobe model (``python -m pneumolens.train.lobes``): lungs -> 5 lobes.

Data: the 250 real lobe label maps of ``lobe_label_maps/`` (1.5 mm, no CT). Input: the right and
left lungs (union of lobes 1-3 and of 4-5) resampled onto the 5 mm lobe grid
(:mod:`pneumolens.anatomy.lobe_grid`); target: the five lobe fractions on the same grid.
Augmentation (training only): scale (global and per axis), small rotations, shifts of the grid
centre, scans that stop short of the apex or the base (z cut), and lung masks with a bite taken
out of their border (a consolidation the lung mask missed). Loss: soft-target cross-entropy
within each lung plus a per-lobe soft Dice, on lung voxels only.

Split (fixed, by case order): every 10th case (offset 0) is the test set, offset 5 the
validation set (checkpoint choice), the other 200 train. Cross-validation (``--fold K --folds 5``,
:func:`fold_cases`): fold K tests on every 5th case (offset K-1; 50 unseen maps, one map per case
id), chooses its checkpoint on a validation subset of its own training maps, trains on the rest,
then predicts its test maps at their own 1.5 mm resolution (``heldout.json`` in ``--out``). Fold 1
tests on the fixed split's test and validation maps, so its training maps are the fixed training
maps. Runs on one CPU thread with a time budget; checkpoints go to ``--out`` (outside git);
``--resume`` continues a run that was stopped.

Needs the ``train`` extra (torch, MONAI).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pneumolens.anatomy.lobe_grid import GRID_SHAPE, lungs_centre_mm, sample_on_grid
from pneumolens.anatomy.lobes import read_label_map

logger = logging.getLogger(__name__)

STORE_MM = 3.0  # maps are kept in memory at 3 mm (every other 1.5 mm voxel)


def split_cases(cases: list[str]) -> dict[str, list[str]]:
    """Fixed split of the sorted case ids: test every 10th, validation every 10th offset 5."""
    cases = sorted(cases)
    test = [c for i, c in enumerate(cases) if i % 10 == 0]
    val = [c for i, c in enumerate(cases) if i % 10 == 5]
    train = [c for c in cases if c not in set(test) | set(val)]
    return {"train": train, "val": val, "test": test}


def fold_cases(cases: list[str], fold: int, folds: int = 5, *, val_every: int = 8) -> dict[str, list[str]]:
    """Cross-validation fold ``fold`` (1..``folds``) of the sorted case ids (one lobe map per case id).

    Test = every ``folds``-th case at offset ``fold - 1``; validation (checkpoint choice) = every
    ``val_every``-th of the remaining cases (offset ``val_every // 2``); training = the others. Over
    ``fold = 1..folds`` the test sets partition the cases; a fold's test cases are never in its
    validation or training sets.
    """
    if not 1 <= fold <= folds:
        raise ValueError(f"fold {fold} is not in 1..{folds}")
    cases = sorted(set(cases))
    test = [c for i, c in enumerate(cases) if i % folds == fold - 1]
    rest = [c for i, c in enumerate(cases) if i % folds != fold - 1]
    val = [c for i, c in enumerate(rest) if i % val_every == val_every // 2]
    train = [c for i, c in enumerate(rest) if i % val_every != val_every // 2]
    return {"train": train, "val": val, "test": test}


def load_maps(root: Path, cache: Path | None = None) -> dict[str, tuple[np.ndarray, tuple[float, float, float]]]:
    """All lobe maps, canonical ``[z, y, x]``, subsampled to about :data:`STORE_MM` (cached as npz)."""
    if cache is not None and cache.exists():
        data = np.load(cache)
        return {k: (data[k], tuple(float(s) for s in data[k + "__sp"])) for k in data.files if not k.endswith("__sp")}
    out = {}
    for path in sorted((root / "maps").glob("*.nii.gz")):
        labels, affine = read_label_map(path)
        sp = np.linalg.norm(affine[:3, :3], axis=0)
        step = [max(1, round(STORE_MM / s)) for s in sp]
        out[path.name.split(".")[0]] = (
            np.ascontiguousarray(labels[:: step[0], :: step[1], :: step[2]]).astype(np.uint8),
            tuple(float(s * f) for s, f in zip(sp, step)),
        )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        flat = {}
        for k, (a, sp) in out.items():
            flat[k], flat[k + "__sp"] = a, np.array(sp)
        np.savez_compressed(cache, **flat)
    return out


def _rotation(rng: np.random.Generator, max_deg: tuple[float, float, float]) -> np.ndarray:
    m = np.eye(3)
    for axis, deg in enumerate(max_deg):
        a = math.radians(rng.uniform(-deg, deg))
        c, s = math.cos(a), math.sin(a)
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        m = m @ r
    return m


def make_sample(labels: np.ndarray, spacing: tuple[float, float, float], rng: np.random.Generator | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Input ``(2, *grid)`` (right, left lung fractions) and target ``(5, *grid)`` lobe fractions."""
    lab = labels
    if rng is not None and rng.random() < 0.25:  # the scan stops short of the apex or of the base
        zs = np.flatnonzero(lab.any(axis=(1, 2)))
        drop = int(rng.uniform(0.1, 0.45) * (zs[-1] - zs[0]))
        lab = lab.copy()
        if rng.random() < 0.5:
            lab[zs[-1] - drop + 1 :] = 0  # apex cut off
        else:
            lab[: zs[0] + drop] = 0  # base cut off
    onehot = np.stack([(lab == k).astype(np.float32) for k in range(1, 6)])
    centre = lungs_centre_mm(lab > 0, spacing)
    matrix = None
    if rng is not None:
        scale = math.exp(rng.uniform(-0.18, 0.18)) * np.exp(rng.normal(0.0, 0.06, 3))
        matrix = _rotation(rng, (10.0, 6.0, 6.0)) @ np.diag(scale)
        centre = centre + rng.normal(0.0, 6.0, 3)
    target = sample_on_grid(onehot, spacing, centre, matrix=matrix)
    lungs = np.stack([target[0:3].sum(0), target[3:5].sum(0)])
    if rng is not None and rng.random() < 0.3:
        lungs = _bite(lungs, rng)
    return lungs.astype(np.float32), target.astype(np.float32)


def _bite(lungs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Remove a ball (10-35 mm radius) centred on the border of one lung from the input."""
    side = int(rng.integers(0, 2))
    m = lungs[side] > 0.5
    border = m & ~np.pad(m, 1)[2:, 1:-1, 1:-1] | m & ~np.pad(m, 1)[:-2, 1:-1, 1:-1] \
        | m & ~np.pad(m, 1)[1:-1, 2:, 1:-1] | m & ~np.pad(m, 1)[1:-1, :-2, 1:-1]
    pts = np.argwhere(border)
    if len(pts) == 0:
        return lungs
    c = pts[rng.integers(len(pts))]
    r = rng.uniform(10.0, 35.0) / 5.0
    zz, yy, xx = np.ogrid[: m.shape[0], : m.shape[1], : m.shape[2]]
    ball = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
    out = lungs.copy()
    out[side][ball] = 0.0
    return out


def build_model() -> torch.nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=2, out_channels=5, channels=(16, 32, 64, 128), strides=(2, 2, 2),
                num_res_units=1)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, lungs: torch.Tensor) -> torch.Tensor:
    """Soft-target CE within each lung + per-lobe soft Dice, on lung voxels (weights = input fractions)."""
    total = logits.new_zeros(())
    dice_terms = []
    for sl, side in ((slice(0, 3), 0), (slice(3, 5), 1)):
        t = target[:, sl]
        w = lungs[:, side : side + 1]
        tn = t / t.sum(1, keepdim=True).clamp_min(1e-6)
        logp = F.log_softmax(logits[:, sl], dim=1)
        total = total + (-(tn * logp).sum(1, keepdim=True) * w).sum() / w.sum().clamp_min(1.0)
        p = logp.exp() * w
        inter = (p * tn * w).sum((0, 2, 3, 4))
        denom = p.sum((0, 2, 3, 4)) + (tn * w).sum((0, 2, 3, 4))
        dice_terms.append(1 - (2 * inter + 1) / (denom + 1))
    return total + torch.cat(dice_terms).mean()


def grid_dice(logits: np.ndarray, target: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """Per-lobe Dice on the grid (hard labels on voxels with lung fraction >= 0.5)."""
    from pneumolens.anatomy.lobes import side_softmax

    p = side_softmax(logits)
    right, left = lungs[0] >= 0.5, lungs[1] >= 0.5
    pred = np.where(right, np.argmax(p[0:3], 0) + 1, np.where(left, np.argmax(p[3:5], 0) + 4, 0))
    truth = np.where(right | left, np.argmax(target, 0) + 1, 0)
    out = []
    for k in range(1, 6):
        a, b = pred == k, truth == k
        s = a.sum() + b.sum()
        out.append(2 * (a & b).sum() / s if s else np.nan)
    return np.array(out)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    maps = load_maps(Path(args.data), cache=Path(args.cache) if args.cache else out / "maps_3mm.npz")
    split = split_cases(list(maps)) if args.fold is None else fold_cases(list(maps), args.fold, args.folds)
    (out / "split.json").write_text(json.dumps(split, indent=1))
    val_samples = [make_sample(*maps[c], None) for c in split["val"]]
    model = build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, best = 0, -1.0
    log = (out / "train_log.jsonl").open("a")
    start = time.time()
    cpu_start = time.process_time()  # CPU seconds of this (one-thread) process: the budget
    ckpt = out / "last.pt"
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, best = state["step"], state["best"]
        rng = state["rng"]
        start -= state["elapsed"]
        cpu_start -= state.get("cpu_s", state["elapsed"])
    total_steps = args.steps
    deadline = args.deadline_epoch or float("inf")

    def used() -> float:
        return max((time.process_time() - cpu_start) / args.budget_s,
                   (time.time() - start) / max(deadline - start, 1.0))

    if args.fold is not None and (out / "heldout.json").exists():
        return  # this fold is finished
    while step < total_steps and used() < 1.0:
        model.train()
        batch = [make_sample(*maps[c], rng) for c in rng.choice(split["train"], args.batch)]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))
        y = torch.from_numpy(np.stack([b[1] for b in batch]))
        # Cosine decay over whichever runs out first: the steps, the CPU budget or the wall-clock deadline.
        progress = max(step / total_steps, used())
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_fn(model(x), y, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % args.eval_every == 0 or step == total_steps:
            model.eval()
            with torch.no_grad():
                dices = np.array([
                    grid_dice(model(torch.from_numpy(xv[None]))[0].numpy(), yv, xv) for xv, yv in val_samples
                ])
            mean = np.nanmean(dices, 0)
            rec = {"step": step, "loss": float(loss.detach()), "lr": lr, "elapsed_s": round(time.time() - start, 1),
                   "cpu_s": round(time.process_time() - cpu_start, 1),
                   "val_grid_dice": [round(float(d), 4) for d in mean], "val_mean": round(float(mean.mean()), 4)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            logger.info("%s", rec)
            if mean.mean() > best:
                best = float(mean.mean())
                torch.save({"model": model.state_dict(), "step": step, "val": rec}, out / "best.pt")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best, "rng": rng,
                        "elapsed": time.time() - start,
                        "cpu_s": time.process_time() - cpu_start}, ckpt)
    log.close()
    if args.fold is not None:
        t0, c0 = time.time(), time.process_time()
        rows = evaluate_heldout(out / "best.pt", Path(args.data), split["test"])
        best_state = torch.load(out / "best.pt", weights_only=False)
        last = json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])
        result = {"fold": args.fold, "folds": args.folds, "n_train": len(split["train"]), "n_val": len(split["val"]),
                  "n_test": len(split["test"]), "steps": last["step"], "train_cpu_s": last["cpu_s"],
                  "train_elapsed_s": last["elapsed_s"], "budget_s": args.budget_s, "best_step": best_state["step"],
                  "best_val": best_state["val"], "eval_cpu_s": round(time.process_time() - c0, 1),
                  "eval_elapsed_s": round(time.time() - t0, 1), "cases": rows}
        (out / "heldout.json").write_text(json.dumps(result, indent=1) + "\n")
        logger.info("fold %d held-out mean Dice %s", args.fold,
                    {n: round(float(np.nanmean([r["dice"][n] for r in rows])), 4) for n in rows[0]["dice"]})


class _TorchRunner:
    """A torch lobe network behind the ``run`` method of :class:`pneumolens.models` sessions."""

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def evaluate_heldout(checkpoint: Path, data: Path, cases: list[str]) -> list[dict]:
    """Per-lobe Dice of ``checkpoint`` on each map of ``cases`` at the map's own resolution (1.5 mm).

    Lungs = union of the map's lobes; the prediction goes through the same path as inference
    (:func:`pneumolens.anatomy.lobes.lobe_probabilities` and ``labels_from_probabilities``).
    """
    from pneumolens.analysis import LOBE_NAMES
    from pneumolens.anatomy.lobes import labels_from_probabilities, lobe_probabilities

    model = build_model()
    model.load_state_dict(torch.load(checkpoint, weights_only=False)["model"])
    runner = _TorchRunner(model)
    rows = []
    for case in cases:
        truth, affine = read_label_map(data / "maps" / f"{case}.nii.gz")
        spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
        lungs = np.where((truth >= 1) & (truth <= 3), 1, np.where(truth >= 4, 2, 0)).astype(np.uint8)
        prob, centre = lobe_probabilities(lungs == 1, lungs == 2, spacing, runner)
        pred, confidence = labels_from_probabilities(prob, centre, lungs, spacing)
        dice = {}
        for lab, name in LOBE_NAMES.items():
            a, b = pred == lab, truth == lab
            s = int(a.sum() + b.sum())
            dice[name] = round(2.0 * int((a & b).sum()) / s, 5) if s else float("nan")
        rows.append({"case": case, "dice": dice, "confidence": {k: round(v, 4) for k, v in confidence.items()}})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/lobe_label_maps")
    p.add_argument("--out", default="/work/runs/lobes")
    p.add_argument("--steps", type=int, default=2800)
    p.add_argument("--budget-s", type=float, default=3300.0, help="CPU seconds of training (one thread)")
    p.add_argument("--deadline-epoch", type=float, default=None, help="stop by this wall-clock time (Unix s)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--cache", default=None, help="npz cache of the 3 mm maps (default: in --out)")
    p.add_argument("--fold", type=int, default=None, help="cross-validation fold to train and test (1..--folds)")
    p.add_argument("--folds", type=int, default=5, help="number of cross-validation folds")
    p.add_argument("--export", type=Path, default=None, metavar="CHECKPOINT",
                   help="export this checkpoint to --onnx (with its sidecar) instead of training")
    p.add_argument("--version", default="1.0.0", help="model version written to the sidecar on --export")
    p.add_argument("--onnx", type=Path, default=Path("src/pneumolens/models/weights/lobes_unet3d.onnx"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.export is not None:
        split = json.loads((args.export.parent / "split.json").read_text())
        text = "sorted case ids: test every 10th (offset 0), validation every 10th (offset 5)"
        if args.fold is not None:
            text = (f"cross-validation fold {args.fold} of {args.folds} (fold_cases): test every {args.folds}th sorted "
                    f"case id (offset {args.fold - 1}), validation every 8th of the others (offset 4)")
        summary = {"lobe_label_maps": {k: len(v) for k, v in split.items()}, "split": text,
                   "licence": "TotalSegmentator data set CC BY 4.0 upstream (see docs/models/lobes_unet3d.md)"}
        meta = export(args.export, args.onnx, data_summary=summary, version=args.version)
        print(json.dumps({k: meta[k] for k in ("name", "sha256", "checkpoint_step", "onnx_vs_torch_max_abs_diff")}))
        return 0
    train(args)
    return 0



# ----------------------------------------------------------------------------- export
class _Logits(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def export(checkpoint: Path, onnx_path: Path, *, data_summary: dict, version: str = "1.0.0") -> dict:
    """Write the network of ``checkpoint`` as ONNX (``lungs (1,2,Z,Y,X) -> logits (1,5,Z,Y,X)``) and its sidecar."""
    import onnxruntime as ort

    from pneumolens.anatomy.lobe_grid import GRID_MM, PRE_MM
    from pneumolens.models import sha256_of

    state = torch.load(checkpoint, weights_only=False)
    model = build_model()
    model.load_state_dict(state["model"])
    model.eval()
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros((1, 2) + GRID_SHAPE)
    torch.onnx.export(_Logits(model), (dummy,), str(onnx_path), input_names=["lungs"], output_names=["logits"],
                      opset_version=17, dynamo=False)
    x = np.random.default_rng(0).random((1, 2) + GRID_SHAPE, dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"lungs": x})[0]
    diff = float(np.abs(got - ref).max())
    if diff > 1e-3:
        raise RuntimeError(f"ONNX and torch logits differ by {diff}")
    meta = {
        "name": onnx_path.stem,
        "version": version,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "architecture": {"type": "monai.networks.nets.UNet", "spatial_dims": 3, "channels": [16, 32, 64, 128],
                         "strides": [2, 2, 2], "num_res_units": 1,
                         "parameters": int(sum(p.numel() for p in model.parameters()))},
        "input": {"kind": "lung_mask_grid", "name": "lungs", "size": list(GRID_SHAPE), "channels": 2, "grid_mm": GRID_MM,
                  "normalisation": f"right and left lung masks block-averaged to ~{PRE_MM[0]} mm, then trilinear "
                  f"occupancy fractions on a {GRID_SHAPE} grid of {GRID_MM} mm centred on the lungs' bounding box "
                  "(pneumolens.anatomy.lobe_grid.lung_input)"},
        "output": {"name": "logits", "softmax": False,
                   "postprocess": "softmax over channels 0-2 in the right lung and 3-4 in the left lung"},
        "classes": {"1": "RUL", "2": "RML", "3": "RLL", "4": "LUL", "5": "LLL"},
        "exported": time.strftime("%Y-%m-%d"),
        "checkpoint_step": int(state["step"]),
        "validation_during_training": state.get("val"),
        "onnx_vs_torch_max_abs_diff": diff,
        "training_data": data_summary,
    }
    onnx_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


if __name__ == "__main__":
    raise SystemExit(main())
