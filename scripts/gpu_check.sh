#!/usr/bin/env bash
# The GPU check (`make gpu-check`): on a CUDA machine, about 10 minutes, writes results/bench/*-cuda*.
#   1. the cost benchmark at real size under bf16 autocast and in float32 (every method; preset gpu)
#   2. the update-survival share of every method under CUDA bf16 and fp16 autocast
#   3. a short HUT / LoRA training on GPT-2 medium built from config, float32 against bf16
# Each step's command is printed and its output kept; the first failure stops the script.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results/bench}
mkdir -p "$OUT"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: no CUDA device")'
run() { echo "+ $*"; "$@"; }
run "$PY" -m hut.bench preset=gpu device=cuda dtype=bf16 out="$OUT"
run "$PY" -m hut.bench preset=gpu device=cuda dtype=float32 "methods=[hut,lora]" out="$OUT"
for dt in bf16 fp16; do
  echo "+ $PY -m hut.precision device=cuda dtype=$dt > $OUT/precision-cuda-$dt.md"
  { echo "Command: \`python -m hut.precision device=cuda dtype=$dt\`"; echo; "$PY" -m hut.precision device=cuda dtype=$dt; } \
    | tee "$OUT/precision-cuda-$dt.md"
done
run "$PY" -m hut.bench.train_check device=cuda out="$OUT"
echo "gpu_check: done; files in $OUT"
