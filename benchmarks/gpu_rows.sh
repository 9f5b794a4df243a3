#!/usr/bin/env bash
# The GPU rows of docs/performance.md in one prepared command for a lent GPU machine (no network there): each
# PART below under its own time limit, results as JSON lines in $OUT/rows.jsonl and every command's output in
# $OUT/PART.log (OUT defaults to runs/gpu-rows).
#
# Here first: bash benchmarks/device_wheels.sh   (the wheels that machine lacks, into .whl/)
# There, with .whl carried:  bash benchmarks/gpu_rows.sh env pipeline starts headline
# (one call of at most 590 s: the parts run in the order given, each under its own limit and none past
# DEADLINE_S, default 570 s after the script started, so that a slow compile costs only the parts after it;
# the JAX there is the machine image's (0.11 with CUDA 13 in 2026-12: its jaxlib and CUDA wheels are over the
# 64 MiB that a call carries), and `env` records it. With 15 minutes of device time a session has room for
# that one call and a machine start: tf32, noaug and ffhq1024 each take a session's call of their own.)
#
# PARTs (about their cost on an H100, compile included):
#   env       the GPU, the driver and the Python packages (seconds)
#   headline  ffhq256's train step (paper256's networks and losses with ADA, as the experiment trains, batch
#             64, bfloat16, synthetic data): s/kimg against the goal of 1.6, compile seconds, peak memory (5-7
#             minutes: compile 275 s without ADA before; ADA doubles the compile on the CPU)
#   noaug     the same step without ADA (the 2.16 s/kimg row of 2026-11-25 was taken so)
#   tf32      the same step in float32 with TF32 (JAX's default precision on a GPU) (about 5 minutes)
#   ffhq1024  ffhq1024's step (StyleGAN2 config F at 1024, batch 32 in minibatches of 4 as NVIDIA's per-GPU
#             batch, bfloat16) against the goal of 8 s/kimg (compile unmeasured)
#   starts    the quickstart's first start (compiles, fills the run's compile-cache/), second start (resumed with
#             the cache) and third (resumed, --compile-cache off), wall clock of each whole process (1-2 minutes)
#   pipeline  the input pipeline at 256x256 with 0, 4 and 8 worker processes, images/s (under a minute)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-rows}
DEADLINE_S=${DEADLINE_S:-570}
mkdir -p "$OUT"
if ! python3 -c "import grain, ml_collections, tensorboardX, tensorflow_datasets" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_rows.sh: installing .whl/*.whl failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

# part NAME LIMIT_S COMMAND...: the command (a program: timeout starts no shell function) under LIMIT_S or the
# time left before DEADLINE_S, whichever is less; its output to $OUT/NAME.log, its JSON lines (a '{' first) to
# rows.jsonl and to stdout (the call's output tail carries them too).
part() {
  local name=$1 limit=$2 left=$((DEADLINE_S - SECONDS))
  shift 2
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 10 ]; then
    echo "== $name: skipped, ${left} s left before the ${DEADLINE_S} s deadline" | tee -a "$OUT/$name.log"
    return
  fi
  echo "== $name (limit ${limit} s): $*" | tee -a "$OUT/$name.log"
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log" | grep '^{' | sed "s/^{/{\"part\": \"$name\", /" \
    | tee -a "$OUT/rows.jsonl"
  echo "== $name: exit ${PIPESTATUS[0]}" | tee -a "$OUT/$name.log"
}

# wall NAME COMMAND...: the whole process's wall clock as one JSON line.
wall() {
  local name=$1 start end
  shift
  start=$EPOCHREALTIME
  "$@" >>"$OUT/starts.log" 2>&1
  local status=$?
  end=$EPOCHREALTIME
  printf '{"part": "starts", "start": "%s", "wall_s": %s, "exit": %d}\n' "$name" \
    "$(python3 -c "print(round($end - $start, 1))")" "$status" | tee -a "$OUT/rows.jsonl"
}

STEP=(python3 benchmarks/networks.py --only train_step --min-time 20)

for what in "$@"; do
  case $what in
    env)
      part env 120 bash -c 'nvidia-smi; python3 -c "import jax, flax, optax, orbax.checkpoint as o, grain, numpy
import google.protobuf as pb
print(jax.__version__, flax.__version__, optax.__version__, o.__version__, grain.__version__, numpy.__version__,
      pb.__version__); print(jax.devices())"' ;;
    headline)
      part headline 590 "${STEP[@]}" --experiment ffhq256 --batch 64 --dtype bfloat16 --cases 256:16384 ;;
    noaug)
      part noaug 590 "${STEP[@]}" --experiment ffhq256 --batch 64 --dtype bfloat16 --cases 256:16384 --set aug=noaug ;;
    tf32)
      part tf32 590 "${STEP[@]}" --experiment ffhq256 --batch 64 --dtype float32 --cases 256:16384 ;;
    ffhq1024)
      part ffhq1024 590 "${STEP[@]}" --experiment ffhq1024 --batch 32 --batch-gpu 4 --dtype bfloat16 \
        --cases 1024:32768 ;;
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
      echo "gpu_rows.sh: unknown part '$what' (expected env, headline, noaug, tf32, ffhq1024, starts or pipeline)"
      exit 1 ;;
  esac
done
