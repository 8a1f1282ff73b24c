"""Training recipe of the 2D lesion U-Net (``pneumolens train lesions --config FILE``).

A MONAI U-Net with three output classes (background, ground-glass, consolidation). Binary
infection masks (Zenodo) supervise P(GGO) + P(consolidation) through a binary cross-entropy and
soft Dice on the summed lesion probability; multi-class targets (MedSeg, inserted lesions) add a
3-class cross-entropy and per-class soft Dice. Resumable: ``last.pt`` is written every epoch and
``--resume`` continues from it with the same sampling sequence.

Needs the ``train`` extra (torch, MONAI); imported only by the training command.
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pneumolens.errors import InputError
from pneumolens.train import data as D
from pneumolens.train.config import ModelConfig, RecipeConfig, TrainConfig
from pneumolens.validate import segmentation

logger = logging.getLogger(__name__)

NUM_CLASSES = 3


def build_model(cfg: ModelConfig) -> torch.nn.Module:
    """The MONAI 2D U-Net of the recipe (1 input channel, 3 output logits)."""
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=NUM_CLASSES,
        channels=tuple(cfg.channels),
        strides=tuple(cfg.strides),
        num_res_units=cfg.num_res_units,
        dropout=cfg.dropout,
    )


def initial_weights(path: Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights to start from: a training checkpoint (``.pt``) or a shipped ONNX export (``.onnx``)."""
    if path.suffix == ".onnx":
        from pneumolens.train.onnx_weights import state_dict_from_onnx

        return state_dict_from_onnx(path, model)
    return torch.load(path, weights_only=False)["model"]


def count_parameters(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ---------------------------------------------------------------- data
def build_sets(cfg: RecipeConfig) -> tuple[D.SampleSet, D.SampleSet, dict]:
    """Training and validation sample sets, plus a JSON-able summary of what went in."""
    d, size = cfg.data, cfg.data.size
    root = cfg.data_root()
    if (d.zenodo or d.medseg or d.hu_volumes) and not root.is_dir():
        raise InputError(
            "training data folder not found", where=root,
            todo="set [data] root (relative to the config file) or $PNEUMOLENS_SHARED_DATA, or use phantoms only",
        )
    train_parts, val_parts, summary = [], [], {}
    if d.zenodo:
        tr = D.zenodo_indices(root, holdout=False, limit=d.zenodo_limit or None)
        held_out = D.zenodo_indices(root, holdout=True)
        extra, held_out = _held_out_part(held_out, d.zenodo_extra)
        if d.zenodo_val:  # a block of whole patients inside the training block; the test block stays unseen
            tr, va = D.split_block(D.zenodo_indices(root, holdout=False), d.zenodo_val)
            tr, va = tr[: d.zenodo_limit or None], va[:: d.zenodo_val_step]
        else:
            va = held_out[:: d.zenodo_val_step][: d.zenodo_limit or None]
        tr = tr + extra
        if not tr or not (va or extra):
            raise InputError("no Zenodo slices for training and validation", where=root / "covid_seg_2d_zenodo",
                             todo="check the folder (ct/, lungs/, covid/ PNGs) or set zenodo = false")
        train_parts.append(D.load_zenodo(root, tr, size))
        val_parts.append(D.load_zenodo(root, va, size))
        summary["covid_seg_2d_zenodo"] = {"train": _span(tr), "val": _span(va), "held_out_trained": _span(extra)}
    if d.medseg:
        tr = D.medseg_names(root, holdout=False, limit=d.medseg_limit or None)
        extra, held_out = _held_out_part([int(s) for s in D.medseg_names(root, holdout=True)], d.medseg_extra)
        if d.medseg_val:
            rest, inside = D.split_block([int(s) for s in D.medseg_names(root, holdout=False)], d.medseg_val)
            tr, va = [str(s) for s in rest][: d.medseg_limit or None], [str(s) for s in inside]
        else:
            va = [str(s) for s in held_out][: d.medseg_limit or None]
        tr = tr + [str(s) for s in extra]
        train_parts.append(D.load_medseg(root, tr, size))
        val_parts.append(D.load_medseg(root, va, size))
        summary["covid_seg_2d_medseg"] = {"train": tr, "val": va}
    volumes = []
    if d.hu_volumes:
        for rel in D.HU_VOLUME_FILES:
            vol, px = D.read_hu_volume(root / rel)
            volumes.append((rel, vol[: d.hu_max_slices or None], px))
    if d.phantoms:
        volumes.extend(phantom_volumes(d.phantoms, seed=cfg.train.seed))
    if volumes:
        ins = D.inserted_samples(
            volumes,
            size,
            variants=d.hu_variants,
            negative_fraction=d.hu_negative_fraction,
            seed=cfg.train.seed,
            volume_box=d.hu_volume_box,
            min_negative_fraction=d.hu_min_negative_fraction,
            diffuse_fraction=d.hu_diffuse_fraction,
        )
        train_parts.append(ins)
        summary["inserted"] = {"volumes": [v[0] for v in volumes], "samples": len(ins)}
    train, val = D.concat(train_parts, size), D.concat(val_parts, size)
    if len(train) == 0:
        raise ValueError("the training recipe selects no samples: enable a data source")
    return train, val, summary


def _span(items: list[int]) -> list[int]:
    """First, last and number of slice numbers (empty list for none), for the run's summary."""
    return [items[0], items[-1], len(items)] if items else []


def _held_out_part(held_out: list[int], block: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """The held-out items inside ``block`` (trained on) and the rest (still held out)."""
    if not block:
        return [], held_out
    rest, inside = D.split_block(held_out, block)
    return inside, rest


def phantom_volumes(n: int, *, seed: int) -> list[tuple[str, np.ndarray, float]]:
    """HU volumes from :mod:`pneumolens.synthetic` phantoms (for runs without the shared data)."""
    from pneumolens import synthetic

    out = []
    for i in range(n):
        # Lesion-free phantoms: lesions are inserted by the same code as for real volumes.
        ph = synthetic.make_chest_phantom(shape=(8, 128, 128), spacing=(10.0, 2.6, 2.6), seed=seed + i, lesions=())
        out.append((f"phantom{i}", ph.volume.astype(np.float32), float(ph.spacing[1])))
    return out


def sample_weights(train: D.SampleSet, cfg: RecipeConfig) -> np.ndarray:
    w = np.empty(len(train), dtype=np.float64)
    for i, n in enumerate(train.names):
        src = n.split("/", 1)[0]
        w[i] = {"zenodo": cfg.data.weight_zenodo, "medseg": cfg.data.weight_medseg}.get(src, cfg.data.weight_inserted)
    w[train.extents >= cfg.data.extensive_fraction] *= cfg.data.weight_extensive  # NaN compares False
    return w / w.sum()


# ---------------------------------------------------------------- augmentation
def augment(img: torch.Tensor, tgt: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips, rotation, scale, shift and intensity changes of a batch ``(B,1,S,S)``."""
    b = img.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    angle = u(-0.26, 0.26)  # +-15 degrees
    scale = u(0.85, 1.2)
    flip_x = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    flip_y = torch.where(torch.rand(b, generator=gen) < 0.3, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip_x, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos * flip_y
    theta[:, 0, 2], theta[:, 1, 2] = u(-0.06, 0.06), u(-0.06, 0.06)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    tgt = F.grid_sample(tgt[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    tgt = tgt[:, 0].round().to(torch.uint8)
    # Intensity: gamma, contrast, brightness, noise (bridges CLAHE / JPG / HU sources).
    img = img.clamp(0, 1) ** torch.exp(u(-0.4, 0.4)).view(b, 1, 1, 1)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = (img - mean) * u(0.8, 1.25).view(b, 1, 1, 1) + mean + u(-0.08, 0.08).view(b, 1, 1, 1)
    # Blur or sharpen half of the batch: the CLAHE'd Zenodo slices are far noisier than
    # windowed HU or JPG slices, and the network should not tell sources apart by grain.
    sigma = float(u(0.3, 1.2)[0])
    k = torch.exp(-((torch.arange(5) - 2.0) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 5)
    blurred = F.conv2d(F.pad(img, (2, 2, 2, 2), mode="replicate"), (k.transpose(1, 2) * k).view(1, 1, 5, 5))
    amount = u(-0.6, 1.0).view(b, 1, 1, 1) * (torch.rand(b, 1, 1, 1, generator=gen) < 0.5)
    img = img + amount * (blurred - img)
    img = img + torch.randn(img.shape, generator=gen) * u(0.0, 0.05).view(b, 1, 1, 1)
    return img.clamp(0, 1), tgt


# ---------------------------------------------------------------- loss
def _soft_dice_loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    inter = (p * y).sum()
    return 1.0 - (2.0 * inter + 1.0) / (p.sum() + y.sum() + 1.0)


def lesion_loss(logits: torch.Tensor, target: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
    """Mixed-supervision loss.

    Binary samples (``kinds == 0``): BCE on log(P1 + P2) vs background. Multi-class samples:
    3-class cross-entropy plus soft Dice of GGO and of consolidation (each only when present in
    the batch). All samples: soft Dice of the summed lesion probability (batch-pooled).
    """
    logp = F.log_softmax(logits, dim=1)
    prob = logp.exp()
    lesion = (target > 0).float()
    binary = kinds == D.BINARY
    loss = _soft_dice_loss(1.0 - prob[:, 0], lesion)
    if binary.any():
        lesion_logp = torch.logsumexp(logp[binary, 1:], dim=1)
        bce = -(lesion[binary] * lesion_logp + (1.0 - lesion[binary]) * logp[binary, 0]).mean()
        loss = loss + bce
    multi = ~binary
    if multi.any():
        loss = loss + F.nll_loss(logp[multi], target[multi].long())
        for c in (1, 2):
            y = (target[multi] == c).float()
            # A class absent from the batch would make its Dice term push every pixel of that
            # class to 0 (1 - 1/(sum p + 1)); the cross-entropy covers that case.
            if y.sum() > 0:
                loss = loss + 0.5 * _soft_dice_loss(prob[multi, c], y)
    return loss


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """Softmax probabilities ``(N, 3, S, S)`` of inputs ``(N, S, S)``."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch, None])
        out.append(torch.softmax(model(x), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, NUM_CLASSES) + images.shape[1:], np.float32)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean arrays pooled over all their elements; NaN when both are empty."""
    return segmentation.dice(pred, truth, both_empty="nan")


def validation_metrics(prob: np.ndarray, val: D.SampleSet) -> dict[str, float]:
    """Pooled Dice per source: binary on Zenodo, binary/GGO/consolidation on MedSeg."""
    labels = prob.argmax(axis=1)
    out: dict[str, float] = {}
    for src in ("zenodo", "medseg"):
        sel = np.array([n.startswith(src + "/") for n in val.names], dtype=bool)
        if not sel.any():
            continue
        out[f"{src}_dice_binary"] = dice(labels[sel] > 0, val.targets[sel] > 0)
        if src == "medseg":
            out["medseg_dice_ggo"] = dice(labels[sel] == 1, val.targets[sel] == 1)
            out["medseg_dice_consolidation"] = dice(labels[sel] == 2, val.targets[sel] == 2)
    return out


def score(metrics: dict[str, float], keys: tuple[str, ...] = ()) -> float:
    """Mean of the validation metrics named in ``keys`` (all when empty), NaNs left out."""
    vals = [v for k, v in metrics.items() if (not keys or k in keys) and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


# ---------------------------------------------------------------- schedule, checkpoints
def lr_factor(step: int, t: TrainConfig) -> float:
    """Multiplier of ``t.lr`` at ``step`` for ``schedule = "cosine_restarts"``.

    Linear warm-up from 0.1 over ``warmup_steps``, then cosine annealing to ``min_lr_fraction``
    with warm restarts, cycles of ``restart_steps`` growing ``restart_mult``-fold (SGDR:
    Loshchilov and Hutter, "SGDR: stochastic gradient descent with warm restarts", ICLR 2017).
    """
    if step < t.warmup_steps:
        return 0.1 + 0.9 * step / t.warmup_steps
    pos, length = step - t.warmup_steps, max(1, t.restart_steps)
    while pos >= length:
        pos -= length
        length *= max(1, t.restart_mult)
    return t.min_lr_fraction + (1.0 - t.min_lr_fraction) * 0.5 * (1.0 + math.cos(math.pi * pos / length))


def cycle_ends(t: TrainConfig, total: int) -> set[int]:
    """Steps at which a cosine cycle of ``t`` ends (annealed weights), up to ``total``."""
    ends, at, length = set(), t.warmup_steps, max(1, t.restart_steps)
    while at + length <= total:
        at += length
        ends.add(at)
        length *= max(1, t.restart_mult)
    return ends


def build_schedule(opt: torch.optim.Optimizer, t: TrainConfig, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    if t.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, total_steps=total, pct_start=0.05)
    if t.schedule == "cosine_restarts":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, t))
    raise InputError(f"unknown schedule {t.schedule!r}", todo='use "onecycle" or "cosine_restarts"')


def rng_states() -> dict:
    """The global random states of python, numpy and torch (restored by :func:`set_rng_states`)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)  # atomic: a kill mid-save keeps the previous checkpoint


class _StopRequest:
    """Turns SIGTERM / SIGINT into a flag checked between steps (checkpoint, then return)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> _StopRequest:  # noqa: PYI034 - typing.Self needs Python 3.11
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        logger.warning("signal %d: writing a checkpoint and stopping after this step", signum)
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------- loop
def _load_cached_sets(cache: Path) -> tuple[D.SampleSet, D.SampleSet, dict]:
    z = np.load(cache, allow_pickle=False)
    train_set, val_set = (
        D.SampleSet(
            z[f"{k}_images"], z[f"{k}_targets"], z[f"{k}_kinds"], list(z[f"{k}_names"]),
            z.get(f"{k}_extents"),  # None for caches written before extents existed
        )
        for k in ("train", "val")
    )
    return train_set, val_set, json.loads(str(z["summary"]))


def _save_sets(cache: Path, train_set: D.SampleSet, val_set: D.SampleSet, summary: dict) -> None:
    np.savez(
        cache,
        train_images=train_set.images, train_targets=train_set.targets, train_kinds=train_set.kinds,
        train_names=np.array(train_set.names), train_extents=train_set.extents, val_images=val_set.images,
        val_targets=val_set.targets, val_kinds=val_set.kinds, val_names=np.array(val_set.names),
        val_extents=val_set.extents, summary=json.dumps(summary),
    )


def training_subset(train_set: D.SampleSet, every: int) -> D.SampleSet:
    """Every ``every``-th Zenodo training sample (as prepared, no augmentation) for a training Dice."""
    idx = [i for i, n in enumerate(train_set.names) if n.startswith("zenodo/")][::every]
    return D.SampleSet(train_set.images[idx], train_set.targets[idx], train_set.kinds[idx], [train_set.names[i] for i in idx])


def train(
    cfg: RecipeConfig, *, resume: bool = False, progress: bool = True, stop_after_epoch: int = 0, stop_after_step: int = 0
) -> Path:
    """Run (or resume) the recipe; returns the path of the best checkpoint.

    ``stop_after_epoch`` / ``stop_after_step`` > 0 stop after that epoch / step as if interrupted
    (the schedule still spans the whole recipe, so ``resume=True`` continues exactly where it
    stopped); SIGTERM or SIGINT do the same after the current step.

    Resuming is exact: ``last.pt`` holds the model, optimiser, LR schedule, the global python /
    numpy / torch random states and the position inside the epoch (batch index and the state of
    the epoch's generator, which draws the samples and the augmentation), so a stopped and
    resumed run computes the same weights as an uninterrupted one (with the same thread count;
    ``tests/train/test_lesions.py`` checks it bit for bit).

    Files in ``cfg.train.out_dir``: ``samples.npz`` (prepared inputs, reused on resume),
    ``last.pt`` (everything needed to resume; at the end of every epoch and every
    ``checkpoint_minutes``), ``best.pt`` (model weights with the best validation score, or the
    last epoch when there is no validation set), ``cycle_<step>.pt`` (weights at the end of each
    cosine cycle), ``log.jsonl`` (one line per epoch).
    """
    from tqdm import tqdm

    t = cfg.train
    torch.set_num_threads(max(1, t.threads))
    torch.manual_seed(t.seed)
    out = cfg.out_dir()
    cache = out / "samples.npz"
    if resume and cache.exists():
        train_set, val_set, summary = _load_cached_sets(cache)
    else:
        t0 = time.time()
        train_set, val_set, summary = build_sets(cfg)
        out.mkdir(parents=True, exist_ok=True)  # only now: bad input leaves no run folder behind
        _save_sets(cache, train_set, val_set, summary)
        logger.info("prepared %d train / %d val samples in %.0f s", len(train_set), len(val_set), time.time() - t0)

    model = build_model(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = max(1, t.samples_per_epoch // t.batch_size)
    total = t.max_steps or steps_per_epoch * t.epochs
    sched = build_schedule(opt, t, total)
    snapshots = cycle_ends(t, total) if t.schedule == "cosine_restarts" else set()
    start_epoch, step, best, history, position = 0, 0, -1.0, [], None
    last = out / "last.pt"
    if t.init_from and not (resume and last.exists()):
        model.load_state_dict(initial_weights(Path(t.init_from), model))
        logger.info("initialised from %s", t.init_from)
    if resume and last.exists():
        state = torch.load(last, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, step, best, history = state["epoch"], state["step"], state["best"], state["history"]
        position = state.get("position")
        if "rng" in state:
            set_rng_states(state["rng"])
        logger.info("resuming at epoch %d step %d", start_epoch + (position is not None), step)

    weights = torch.from_numpy(sample_weights(train_set, cfg))
    images = torch.from_numpy(train_set.images)
    targets = torch.from_numpy(train_set.targets)
    kinds = torch.from_numpy(train_set.kinds)
    fit_set = training_subset(train_set, t.train_eval_step) if t.train_eval_step else None
    meta = {"config": _jsonable(cfg), "data": summary, "parameters": count_parameters(model)}
    (out / "recipe.json").write_text(json.dumps(meta, indent=2))

    def checkpoint(epoch_done: int, pos: dict | None) -> None:
        _save_atomic(
            {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "epoch": epoch_done, "step": step, "best": best, "history": history, "position": pos,
             "rng": rng_states()},
            last,
        )

    with _StopRequest() as stop:
        for epoch in range(start_epoch, t.epochs):
            if step >= total or (stop_after_epoch and epoch >= stop_after_epoch):
                break
            gen = torch.Generator().manual_seed(t.seed * 1000 + epoch)  # same draws after a resume
            order = torch.multinomial(weights, steps_per_epoch * t.batch_size, replacement=True, generator=gen)
            first, losses, seconds = 0, [], 0.0
            if position is not None:  # resume inside this epoch where the checkpoint left it
                gen.set_state(position["generator"])
                first, losses, seconds = position["batch"], list(position["losses"]), position["seconds"]
                position = None
            model.train()
            t0 = saved = time.time()
            bar = tqdm(range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{t.epochs}", disable=not progress, mininterval=20)
            for i in bar:
                if step >= total:
                    break
                idx = order[i * t.batch_size : (i + 1) * t.batch_size]
                x, y = augment(images[idx, None], targets[idx], gen) if t.augment else (images[idx, None], targets[idx])
                loss = lesion_loss(model(x), y, kinds[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", refresh=False)
                halt = stop.requested or (stop_after_step and step >= stop_after_step)
                due = t.checkpoint_minutes > 0 and time.time() - saved >= 60.0 * t.checkpoint_minutes
                if (halt or due) and i + 1 < steps_per_epoch:
                    pos = {"batch": i + 1, "generator": gen.get_state(), "losses": losses,
                           "seconds": seconds + time.time() - t0}
                    checkpoint(epoch, pos)
                    saved = time.time()
                    if halt:
                        logger.info("stopped at epoch %d step %d (checkpoint %s)", epoch + 1, step, last)
                        return out / "best.pt"
            metrics = validation_metrics(predict_probabilities(model, val_set.images), val_set) if len(val_set) else {}
            s = score(metrics, t.select_on) if metrics else float(epoch)
            if fit_set is not None and len(fit_set):
                metrics["train_zenodo_dice_binary"] = validation_metrics(predict_probabilities(model, fit_set.images), fit_set)[
                    "zenodo_dice_binary"
                ]
            record = {
                "epoch": epoch + 1, "step": step, "loss": float(np.mean(losses)) if losses else float("nan"),
                "seconds": round(seconds + time.time() - t0, 1), "lr": sched.get_last_lr()[0], **metrics, "score": s,
            }
            history.append(record)
            with (out / "log.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
            logger.info("epoch %s", record)
            if not math.isnan(s) and s >= best:
                best = s
                torch.save({"model": model.state_dict(), "epoch": epoch + 1, "metrics": metrics}, out / "best.pt")
            if step in snapshots:
                torch.save({"model": model.state_dict(), "epoch": epoch + 1, "metrics": metrics}, out / f"cycle_{step}.pt")
            checkpoint(epoch + 1, None)
            if stop.requested or (stop_after_step and step >= stop_after_step):
                break
    if not (out / "best.pt").exists():
        torch.save({"model": model.state_dict(), "epoch": start_epoch, "metrics": {}}, out / "best.pt")
    return out / "best.pt"


def _jsonable(cfg: RecipeConfig) -> dict:
    d = asdict(cfg)
    d["base_dir"] = str(cfg.base_dir)
    return d


def load_trained(cfg: RecipeConfig, checkpoint: Path) -> torch.nn.Module:
    model = build_model(cfg.model)
    model.load_state_dict(torch.load(checkpoint, weights_only=False)["model"])
    return model.eval()
