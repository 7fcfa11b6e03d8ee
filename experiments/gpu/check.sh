#!/usr/bin/env bash
# The prepared GPU check: every GPU number of the project in one command, <= 8 minutes on one H100/H200, no network.
#
#   python3 experiments/gpu/prepare.py                     # once, where the package registry is reachable
#   bash experiments/gpu/check.sh [--out DIR]              # on the GPU machine, from anywhere; OUT=DIR works too
#   bash experiments/gpu/check.sh --dry [--out DIR]        # on CPU: tiny sizes, GPU-only steps reported as skipped
#
# Needs only python3 with torch, triton, lightning, transformers, pytest. When experiments/gpu/prepared/ exists
# (prepare.py: hydra-core, omegaconf, antlr4 wheels and an fp16 MiniLM package), its wheels are installed into a
# temporary folder and put on PYTHONPATH with prepared/site. Steps run in order of value, each with its own time
# limit, so a hang in one still leaves the others' results:
#   benchmark (bf16 GEMM ceiling + copy bandwidth, then naive/chunked/triton/auto at N = 32768, D = 768, breakdown)
#   → fits (triton alone at N = 262,144) → train_step (MiniLM, uni_p 4,096 and 65,536, multi_p_i 4,096)
#   → gpu_lane (pytest -m gpu, without -x) → smoke (run.py debug=smoke trainer=gpu logger=csv)
#   → memcheck (compute-sanitizer on two kernel tests, one forced plan; "inconclusive" on timeout).
# $OUT receives at most 8 files: summary.txt, results.json and one log per step.
set -u
usage="usage: check.sh [--dry] [--out DIR]"
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) DRY=1 ;;
    --out)
      [ $# -ge 2 ] || { echo "check.sh: --out needs a folder ($usage)" >&2; exit 2; }
      OUT=$2
      shift ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "check.sh: unknown argument '$1' ($usage)" >&2; exit 2 ;;
  esac
  shift
done
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-logs/gpu_check/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"  # intermediate JSON, the kernel choice cache, the installed wheels: outside $OUT
trap 'rm -rf "$WORK"' EXIT
PY="${PYTHON:-python3}"  # the machine's python3; PYTHON=... for another interpreter
PREPARED="$ROOT/experiments/gpu/prepared"
SITE=""
if [ -d "$PREPARED/wheels" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" "$PREPARED"/wheels/*.whl \
    && SITE="$WORK/site:$PREPARED/site:"
fi
export PYTHONPATH="$SITE$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export WANDB_MODE=offline HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRITON_DEFAULT_FP_FUSION=1
export INFEMBED_KERNEL_CACHE="$WORK/kernel_choices.json"  # every step runs the same tuned tiles
: > "$OUT/summary.txt"
: > "$WORK/steps.tsv"

step() {  # step NAME SECONDS COMMAND...: time limit, log to $OUT/NAME.log, status to summary and steps.tsv
  local name=$1 limit=$2 start=$SECONDS rc status
  shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$OUT/summary.txt"
  timeout --signal=INT --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 124 | 137) status=timeout ;; *) status=failed ;; esac
  [ "$name" = memcheck ] && [ $status = timeout ] && status=inconclusive
  echo "   $status (exit $rc) after $((SECONDS - start))s" | tee -a "$OUT/summary.txt"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((SECONDS - start))" >> "$WORK/steps.tsv"
  tail -n 4 "$OUT/$name.log"
}

skip() {  # skip NAME WHY
  echo "== $1: skipped ($2)" | tee -a "$OUT/summary.txt"
  printf '%s\tskipped\t\t0\n' "$1" >> "$WORK/steps.tsv"
}

{
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"
  echo "prepared: ${SITE:-none}"
} 2>&1 | tee -a "$OUT/summary.txt"

BENCH=(-m infembed.kernels.benchmark --device cuda --dim 768 --dtype bf16 --shape uni_p_iq)
TRAIN=(experiments/gpu/train_step.py --runs uni_p:4096 uni_p:65536 multi_p_i:4096 --grad-cache 1024)
if [ $DRY = 1 ]; then
  BENCH=(-m infembed.kernels.benchmark --dry)
  TRAIN=(experiments/gpu/train_step.py --tiny --device cpu --runs uni_p:12 multi_p_i:12 --grad-cache 5)
fi

step benchmark 100 $PY "${BENCH[@]}" --sizes 32768 --repeats 5 --warmup 1 --breakdown \
  --backends naive chunked triton auto --json "$WORK/benchmark.json"
step fits 45 $PY "${BENCH[@]}" --fits 262144 --repeats 1 --warmup 1 --json "$WORK/fits.json"
step train_step 100 $PY "${TRAIN[@]}" --json "$WORK/train_step.json"
if [ $DRY = 1 ]; then
  skip gpu_lane "dry run"
  skip smoke "dry run"
  skip memcheck "dry run"
else
  step gpu_lane 130 $PY -m pytest -m gpu tests/test_kernels_gpu.py tests/test_losses_gpu.py -q -rfE \
    -p no:cacheprovider
  step smoke 45 $PY run.py debug=smoke trainer=gpu logger=csv "hydra.run.dir=$WORK/smoke"
  if command -v compute-sanitizer > /dev/null; then
    INFEMBED_TRITON_BWD=blocked INFEMBED_TRITON_FWD_TILE=64x64x64w4s2 INFEMBED_TRITON_BWD_TILE=64x64x32w4s2 \
      step memcheck 30 compute-sanitizer --tool memcheck --error-exitcode 1 --target-processes all \
      $PY -m pytest tests/test_kernels_triton.py -q -p no:cacheprovider -k "rowcol_matches_reference or misaligned"
  else
    skip memcheck "compute-sanitizer not found"
  fi
fi

$PY - "$WORK" "$OUT/results.json" << 'EOF'
import json, sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
steps = {}
for line in (work / "steps.tsv").read_text().splitlines():
    name, status, rc, seconds = line.split("\t")
    steps[name] = {"status": status, "exit": int(rc) if rc else None, "seconds": int(seconds)}
read = lambda name: json.loads((work / name).read_text()) if (work / name).exists() else None
doc = {
    "steps": steps,
    "benchmark": read("benchmark.json"),
    "fits": read("fits.json"),
    "train_step": read("train_step.json"),
    "kernel_choices": read("kernel_choices.json"),
}
out.write_text(json.dumps(doc, indent=1))
EOF
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' ')" | tee -a "$OUT/summary.txt"
