"""Fitting test of candidate lesion networks on v2 training slices (issue 15, capacity choice).

``python benchmarks/lesion_capacity_probe.py --config configs/lesions_v2.toml --steps 200
--every 12 --out /work/runs/lesion_v2_probe --json probe.json``

A network that underfits shows it first on a small set it is asked to memorise. Each candidate
trains ``--steps`` steps of 8 slices on every ``--every``-th Zenodo training slice of the v2
split (same prepared samples and draws, no augmentation, one-cycle LR with peak ``--lr``, one
thread), then reports its parameters, FLOPs per 192x192 slice, training seconds per step, the
mean loss, Dice on those same slices (fit) and on the validation block (Zenodo 1081-1257,
MedSeg 40-46), and onnxruntime seconds for 16 slices (2 threads, best of 5).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from pneumolens.train.config import ModelConfig, load_config
from pneumolens.train.lesions import (
    _load_cached_sets,
    _save_sets,
    build_model,
    build_sets,
    count_parameters,
    train,
    training_subset,
)

CANDIDATES = {
    "shipped_16-256_r1": ModelConfig(channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=1),
    "deeper_16-512_r1": ModelConfig(channels=(16, 32, 64, 128, 256, 512), strides=(2, 2, 2, 2, 2), num_res_units=1),
    "deeper_16-512_r2": ModelConfig(channels=(16, 32, 64, 128, 256, 512), strides=(2, 2, 2, 2, 2), num_res_units=2),
}


def gflops(model: torch.nn.Module, size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model.eval()(torch.zeros(1, 1, size, size))
    return fc.get_total_flops() / 1e9


def ort_seconds(model: torch.nn.Module, size: int, path: Path) -> float:
    import onnxruntime as ort

    from pneumolens.train.export import export_onnx

    export_onnx(model, path, size=size)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((16, 1, size, size), dtype=np.float32)
    sess.run(None, {"image": x})
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        sess.run(None, {"image": x})
        best = min(best, time.perf_counter() - t0)
    return float(best)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--every", type=int, default=12)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args()
    base = load_config(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "samples.npz"
    if not cache.exists():
        _save_sets(cache, *build_sets(base))
    fit_cache = args.out / f"fit_every{args.every}.npz"
    if not fit_cache.exists():
        train_set, val_set, summary = _load_cached_sets(cache)
        _save_sets(fit_cache, training_subset(train_set, args.every), val_set, summary)
    results = {}
    for name, mcfg in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        run = args.out / name
        run.mkdir(exist_ok=True)
        shutil.copy(fit_cache, run / "samples.npz")
        t = dataclasses.replace(
            base.train, out_dir=str(run), epochs=1, samples_per_epoch=8 * args.steps, schedule="onecycle",
            checkpoint_minutes=0.0, augment=False, lr=args.lr, train_eval_step=1, seed=0,
        )
        cfg = dataclasses.replace(base, model=mcfg, train=t)
        t0 = time.time()
        train(cfg, resume=True, progress=False)  # resume=True: reuse the prepared samples
        seconds = time.time() - t0
        rec = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
        model = build_model(mcfg)
        model.load_state_dict(torch.load(run / "last.pt", weights_only=False)["model"])
        results[name] = {
            "parameters": count_parameters(model),
            "gflop_per_slice": round(gflops(model, base.data.size), 3),
            "seconds_per_step": round(rec["seconds"] / args.steps, 3),
            "wall_seconds": round(seconds, 1),
            "loss_mean": rec["loss"],
            "onnxruntime_seconds_16_slices": round(ort_seconds(model, base.data.size, run / "probe.onnx"), 3),
            **{k: v for k, v in rec.items() if "dice" in k},
        }
        print(name, json.dumps(results[name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "every": args.every, "lr": args.lr, "config": str(args.config), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
