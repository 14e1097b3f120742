#!/usr/bin/env bash
# Profile the built-in model zoo on the local GPU at several batch sizes (lepsim profile).
#
# Writes   lepsim/data/profiles/lepsim/<gpu>/<model>.<mode>.parquet  (+ .meta.json)
# where <gpu> is the catalog name of the GPU (e.g. H200), or cuda-<driver name> when the
# catalog does not list it.  Uses the Python environment already there (.venv when present);
# it installs nothing unless INSTALL=1, and then only `pip install -e '.[profile]'`.
#
# Budget: the whole script stops starting new runs after BUDGET_S seconds (default 420 s)
# and each run is killed after its own limit, so it ends within 8 minutes.  Files are
# written atomically, so a killed run leaves no half-written profile.
#
# Environment (all optional):
#   DEVICE=cuda      cpu to try the same code path without a GPU
#   OUT_ROOT=lepsim/data/profiles/lepsim
#   QUICK=1          tiny batch sizes and few steps (a smoke test, e.g. with DEVICE=cpu)
#   BUDGET_S=420     seconds after which no new run starts
#   PYTHON=python    the interpreter to use
#   INSTALL=1        pip install -e '.[profile]' first if torch is missing
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
if [[ -z "${PYTHON:-}" && -f .venv/bin/activate ]]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
PY="${PYTHON:-python}"
DEVICE="${DEVICE:-cuda}"
OUT_ROOT="${OUT_ROOT:-lepsim/data/profiles/lepsim}"
BUDGET_S="${BUDGET_S:-420}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c 'import torch' 2>/dev/null; then
  if [[ "${INSTALL:-0}" == 1 ]]; then
    "$PY" -m pip install -e '.[profile]' || exit 2
  else
    echo "gpu_profile.sh: PyTorch is missing; run with INSTALL=1 or pip install -e '.[profile]'" >&2
    exit 2
  fi
fi

# One Python call: check the device and name the output folder after it.
GPU_DIR="$("$PY" - "$DEVICE" <<'EOF'
import sys
from lepsim.costs import profiler
try:
    kind = profiler.resolve_device(sys.argv[1])
    label, raw = profiler.device_info(kind)
except profiler.ProfilerError as e:
    print(e, file=sys.stderr)
    sys.exit(2)
print(profiler.device_slug(label))
EOF
)" || exit 2
OUT_DIR="$OUT_ROOT/$GPU_DIR"
mkdir -p "$OUT_DIR" || exit 2
echo "gpu_profile.sh: device $DEVICE -> $OUT_DIR (budget ${BUDGET_S}s)"

if [[ "${QUICK:-0}" == 1 ]]; then
  WARMUP=1; STEPS=2
  # model  mode  batch sizes  per-run limit (s)
  RUNS=(
    "mnist-mlp    train      8,32     60"
    "resnet-small train      4        60"
    "gpt-small    train      2        90"
    "gpt-small    inference  2        60"
  )
else
  WARMUP=5; STEPS=20
  RUNS=(
    "mnist-mlp    train      64,256,1024,4096   60"
    "resnet-small train      32,64,128,256,512  90"
    "gpt-small    train      8,16,32,64         120"
    "mnist-mlp    inference  64,1024,4096       45"
    "resnet-small inference  32,128,512         60"
    "gpt-small    inference  8,32,64            60"
  )
fi

failed=0
for run in "${RUNS[@]}"; do
  read -r model mode batches limit <<<"$run"
  if (( SECONDS >= BUDGET_S )); then
    echo "gpu_profile.sh: budget spent, skipping $model $mode" >&2
    failed=1
    continue
  fi
  left=$(( BUDGET_S + 60 - SECONDS ))      # the last run may overrun the budget by a minute
  (( limit > left )) && limit=$left
  echo "== $model $mode batches $batches (limit ${limit}s, t=${SECONDS}s)"
  timeout --signal=INT --kill-after=10 "$limit" \
    "$PY" -m lepsim.costs.profile_cli "$model" --device "$DEVICE" --mode "$mode" \
      --batch-sizes "$batches" --warmup "$WARMUP" --steps "$STEPS" \
      --out "$OUT_DIR/$model.$mode.parquet"
  rc=$?
  if (( rc != 0 )); then
    echo "gpu_profile.sh: $model $mode failed (exit $rc)" >&2
    failed=1
  fi
done
echo "gpu_profile.sh: done in ${SECONDS}s; files in $OUT_DIR:"
ls -l "$OUT_DIR"
exit $failed
