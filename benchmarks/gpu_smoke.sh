#!/usr/bin/env bash
# GPU smoke test for a session with a lent NVIDIA GPU: <= 8 minutes, no network, one JSON.
# Prepare on the CPU side first (the model and data go to runs/gpu_smoke/, gitignored, so carry it):
#   PYTHONPATH=. python benchmarks/prepare_gpu_smoke.py
# then on the GPU machine, from the copied working tree:
#   bash benchmarks/gpu_smoke.sh        # → $OUT/gpu_smoke.json, or benchmarks/results/gpu_smoke.json
# Steps and what each records: see benchmarks/gpu_smoke.py. A step that fails is recorded and the
# next one runs; the JSON is rewritten after every step, so a run cut off at the limit still reports.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export PIP_NO_INDEX=1 HF_HUB_OFFLINE=1  # no network there: fail fast instead of waiting on one
if [ ! -f runs/gpu_smoke/model/metadata.json ]; then
    echo "gpu_smoke: runs/gpu_smoke/model is missing: run benchmarks/prepare_gpu_smoke.py on the CPU side and carry runs/gpu_smoke" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3 || true
# 470 s for the steps leaves the 8-minute budget room for start-up and the copy back
timeout --signal=TERM --kill-after=10 470 python benchmarks/gpu_smoke.py "$@"
status=$?
[ "$status" -eq 124 ] && echo "gpu_smoke: time limit reached; the JSON holds the steps that finished" >&2
exit "$status"
