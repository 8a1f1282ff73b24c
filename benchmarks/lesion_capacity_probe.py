"""Short training runs of candidate lesion networks on the v2 data (issue 15, capacity choice).

``python benchmarks/lesion_capacity_probe.py --config configs/lesions_v2.toml --steps 300
--out /work/runs/lesion_v2_probe --json probe.json``

Each candidate trains ``--steps`` steps of 8 slices with the v2 recipe (same prepared samples,
same draws and augmentation, one-cycle LR over the probe, one thread), then reports its
parameters, FLOPs per 192x192 slice, training seconds per step, the training loss of the last
50 steps, Dice on every 6th Zenodo training slice (fit) and on the validation block (Zenodo
1081-1257, MedSeg 40-46), and onnxruntime seconds for 16 slices (2 threads, best of 5).
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
from pneumolens.train.lesions import build_model, build_sets, count_parameters, _save_sets, train

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
    args = ap.parse_args()
    base = load_config(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "samples.npz"
    if not cache.exists():
        _save_sets(cache, *build_sets(base))
    results = {}
    for name, mcfg in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        run = args.out / name
        run.mkdir(exist_ok=True)
        shutil.copy(cache, run / "samples.npz")
        t = dataclasses.replace(
            base.train, out_dir=str(run), epochs=1, samples_per_epoch=8 * args.steps, schedule="onecycle",
            checkpoint_minutes=0.0,
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
        args.json.write_text(json.dumps({"steps": args.steps, "config": str(args.config), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
