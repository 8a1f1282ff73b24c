#!/bin/bash
# Export /work/runs/lesion_v2/$1.pt and evaluate it (no inserted 3D cases, no timing)
set -e
cd /work
export PYTHONPATH=/work/wt-model/src
PY=/work/main/.venv/bin/python
nice -n 10 $PY -c "from pathlib import Path; from pneumolens.train.config import load_config; from pneumolens.train.export import export_recipe; print(export_recipe(load_config('/work/wt-model/configs/lesions_v2.toml'), Path('runs/lesion_v2/$1.pt')))" > /work/runs/lesion_v2/export_$1.out 2>&1
mkdir -p /work/runs/lesion_v2/export_$1
cp /work/runs/lesion_v2/lesion_unet2d.onnx /work/runs/lesion_v2/lesion_unet2d.json /work/runs/lesion_v2/export_$1/
nice -n 10 $PY -m pneumolens.train.evaluate --weights /work/runs/lesion_v2/export_$1/lesion_unet2d.onnx --no-inserted --no-timing --threads 1 --json /work/runs/lesion_v2/eval_v2_$1.json > /work/runs/lesion_v2/eval_v2_$1.out 2>&1
$PY /work/wt-model/benchmarks/compare_lesion_evals.py /work/runs/lesion_v2/eval_v2_$1.json /work/runs/lesion_v2/eval_shipped2.json --names v2 shipped > /work/runs/lesion_v2/compare_$1.md
echo done
