#!/usr/bin/env bash
# The full benchmark of issue 12 (heavy: paper-width networks at 128, 256 and 512 px).
# Not run by the tests. Usage: benchmarks/run_full.sh [OUT_DIR] [DEVICE]
#   GPU:  benchmarks/run_full.sh bench-full cuda
#   CPU:  OMP_NUM_THREADS=<cores> benchmarks/run_full.sh bench-full-cpu cpu   (hours on a small CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench-full}"
DEVICE="${2:-auto}"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m radsynth.cli bench --sizes 128,256,512 --steps 10 --device "$DEVICE" --out "$OUT"
if [ "$DEVICE" = "cpu" ] || { [ "$DEVICE" = "auto" ] && ! "$PY" -c 'import torch,sys; sys.exit(torch.cuda.is_available())'; }; then
  "$PY" benchmarks/cosingan_quick_preset.py --steps 5 --out "$OUT/cosingan_quick_preset.json"
fi
