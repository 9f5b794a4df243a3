#!/usr/bin/env bash
# The GPU rows of docs/performance.md in one prepared command for a lent GPU machine (no network there): each
# PART below under its own time limit, results as JSON lines in $OUT/rows.jsonl and every command's output in
# $OUT/PART.log (OUT defaults to runs/gpu-rows).
#
# Here first: bash benchmarks/device_wheels.sh   (the wheels that machine lacks, into .whl/)
# There, with .whl carried:  bash benchmarks/gpu_rows.sh env headline starts pipeline
#
# PARTs (in the order given; about their cost on an H100, compile included):
#   env       the GPU, the driver and the Python packages (seconds)
#   headline  ffhq256's train step (paper256's networks and losses, batch 64, bfloat16, synthetic data):
#             s/kimg against the goal of 1.6, compile seconds, peak memory (about 5 minutes: compile 275 s before)
#   tf32      the same step in float32 with TF32 (JAX's default precision on a GPU) (about 5 minutes)
#   ffhq1024  ffhq1024's step (paper1024, batch 32, bfloat16) against the goal of 8 s/kimg (compile unmeasured)
#   starts    the quickstart's first start (compiles, fills the run's compile-cache/), second start (resumed with
#             the cache) and third (resumed, --compile-cache off), wall clock of each whole process (1-2 minutes)
#   pipeline  the input pipeline at 256x256 with 0, 4 and 8 worker processes, images/s (under a minute)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-rows}
mkdir -p "$OUT"
if ! python3 -c "import grain, ml_collections, tensorboardX, tensorflow_datasets" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_rows.sh: installing .whl/*.whl failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

# part NAME LIMIT_S COMMAND...: the command's output to $OUT/NAME.log, its JSON lines (a '{' first) to rows.jsonl.
part() {
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*" | tee -a "$OUT/$name.log"
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log" | grep '^{' | sed "s/^{/{\"part\": \"$name\", /" >>"$OUT/rows.jsonl"
  echo "== $name: exit ${PIPESTATUS[0]}" | tee -a "$OUT/$name.log"
}

# wall NAME COMMAND...: the whole process's wall clock as one JSON line.
wall() {
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >>"$OUT/starts.log" 2>&1
  local status=$?
  end=$(date +%s.%N)
  printf '{"part": "starts", "start": "%s", "wall_s": %.1f, "exit": %d}\n' "$name" "$(echo "$end - $start" | bc)" \
    "$status" | tee -a "$OUT/rows.jsonl"
}

train_step() {
  python3 benchmarks/networks.py --only train_step --min-time 20 "$@"
}

for what in "$@"; do
  case $what in
    env)
      part env 120 bash -c 'nvidia-smi; python3 -c "import jax, flax, optax, orbax.checkpoint as o, grain
print(jax.__version__, flax.__version__, optax.__version__, o.__version__, grain.__version__); print(jax.devices())"' ;;
    headline)
      part headline 590 train_step --experiment ffhq256 --batch 64 --dtype bfloat16 --cases 256:16384 ;;
    tf32)
      part tf32 590 train_step --experiment ffhq256 --batch 64 --dtype float32 --cases 256:16384 ;;
    ffhq1024)
      part ffhq1024 590 train_step --experiment ffhq1024 --batch 32 --dtype bfloat16 --cases 1024:32768 ;;
    starts)
      run=$(mktemp -d)/quickstart
      for step in 1 2; do
        wall "$([ "$step" = 1 ] && echo first || echo second)" timeout 300 python3 -m stylegan_jax.train \
          --experiment quickstart --outdir "$run" --stop-at-step "$step"
      done
      wall third timeout 300 python3 -m stylegan_jax.train --experiment quickstart --outdir "$run" --stop-at-step 3 \
        --compile-cache off
      du -sh "$run/compile-cache" >>"$OUT/starts.log" ;;
    pipeline)
      part pipeline 170 python3 benchmarks/data_pipeline.py --workers 0 4 8 ;;
    *)
      echo "gpu_rows.sh: unknown part '$what' (expected env, headline, tf32, ffhq1024, starts or pipeline)"
      exit 1 ;;
  esac
done
