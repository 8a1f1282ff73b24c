#!/bin/bash
# Export a checkpoint of the v2 run and evaluate it against the shipped model (docs/training.md,
# "The running v2 training"). Usage: benchmarks/lesion_v2_eval_checkpoint.sh best|last|cycle_1750
# Environment: RUNS_PARENT (folder holding runs/lesion_v2, default /work), REPO (this checkout,
# default: the script's parent folder), PY (python of the venv, default $REPO/.venv/bin/python).
set -euo pipefail
NAME=$1
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
RUNS_PARENT=${RUNS_PARENT:-/work}
PY=${PY:-$REPO/.venv/bin/python}
RUN=$RUNS_PARENT/runs/lesion_v2
export PYTHONPATH=$REPO/src
cd "$RUNS_PARENT"
nice -n 10 "$PY" -c "from pathlib import Path; from pneumolens.train.config import load_config; \
from pneumolens.train.export import export_recipe; \
print(export_recipe(load_config('$REPO/configs/lesions_v2.toml'), Path('$RUN/$NAME.pt')))" > "$RUN/export_$NAME.out" 2>&1
mkdir -p "$RUN/export_$NAME"
cp "$RUN/lesion_unet2d.onnx" "$RUN/lesion_unet2d.json" "$RUN/export_$NAME/"
nice -n 10 "$PY" -m pneumolens.train.evaluate --weights "$RUN/export_$NAME/lesion_unet2d.onnx" --no-inserted \
    --no-timing --threads 1 --json "$RUN/eval_v2_$NAME.json" > "$RUN/eval_v2_$NAME.out" 2>&1
"$PY" "$REPO/benchmarks/compare_lesion_evals.py" "$RUN/eval_v2_$NAME.json" \
    "$REPO/docs/models/lesion_unet2d_records/eval_shipped_v2split.json" --names v2 shipped > "$RUN/compare_$NAME.md"
cat "$RUN/compare_$NAME.md"
