"""Plot the lesion v2 training record: validation and training-fit Dice per epoch, learning rate.

Usage::

    python benchmarks/lesion_v2_curve.py [--log docs/models/lesion_unet2d_records/train_log_v2.jsonl]
        [--shipped docs/models/lesion_unet2d_records/eval_shipped_v2split.json]
        [--out docs/img/lesion_v2_training.png]

The shipped model's figures on the same blocks are drawn as dashed lines; it trained on the
validation blocks, so for it they are training-set figures (see the model card).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "docs" / "models" / "lesion_unet2d_records"

#: log key -> (label, key of the same block in an evaluation JSON, colour)
CURVES = {
    "zenodo_dice_binary": ("Zenodo validation block (1081-1257)", "zenodo_validation", "tab:blue"),
    "medseg_dice_binary": ("MedSeg validation files 40-46", "medseg_validation", "tab:orange"),
    "train_zenodo_dice_binary": ("Zenodo training slices (every 6th)", "zenodo_training_every_6", "tab:green"),
}


def read_log(path: Path) -> list[dict]:
    """Rows of a training ``log.jsonl`` that carry validation metrics."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if "zenodo_dice_binary" in r]


def shipped_pooled(path: Path) -> dict[str, float]:
    """Pooled binary Dice of the shipped model per block, from a ``pneumolens.train.evaluate`` JSON."""
    report = json.loads(path.read_text())
    return {block: float(report[block]["dice_binary_pooled"]) for _, block, _ in CURVES.values()}


def plot(rows: list[dict], shipped: dict[str, float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, height_ratios=[3, 1])
    for key, (label, block, colour) in CURVES.items():
        ax.plot(steps, [r.get(key, float("nan")) for r in rows], color=colour, lw=1.2, label=f"v2: {label}")
        if block in shipped:
            ax.axhline(shipped[block], color=colour, ls="--", lw=0.9)
    ax.set_ylabel("binary Dice (pooled)")
    ax.set_ylim(0.3, 0.9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Lesion v2 training (dashed: shipped stage 6 on the same slices, which it trained on)", fontsize=9)
    ax_lr.plot(steps, [r["lr"] for r in rows], color="black", lw=1)
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("step (batch 8)")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=RECORDS / "train_log_v2.jsonl")
    parser.add_argument("--shipped", type=Path, default=RECORDS / "eval_shipped_v2split.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "lesion_v2_training.png")
    args = parser.parse_args()
    rows = read_log(args.log)
    shipped = shipped_pooled(args.shipped)
    plot(rows, shipped, args.out)
    print(f"{len(rows)} epochs, last step {rows[-1]['step']}; shipped lines: {shipped}; wrote {args.out}")


if __name__ == "__main__":
    main()
