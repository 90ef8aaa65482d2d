#!/usr/bin/env bash
# The GPU kit: one short run on a GPU machine measures everything issue 26 asks for.
#
#   bash bench/gpu_kit.sh fetch    here, where PyPI is reachable: the wheels of bench/gpu_wheels.txt into .gpu-wheels/
#   bash bench/gpu_kit.sh run      there (carry .gpu-wheels): install them, run the GPU tests, then bench/gpu_bench.py;
#                                  everything lands in $OUT (gpu-kit.log, the results JSON, the tests' log)
#   GPU_KIT_DRY_RUN=1 bash bench/gpu_kit.sh run    on a CPU: the same steps with this checkout's Python and tiny
#                                  models (the GPU tests skip, the bench runs --dry-run) - checks the kit itself
#
# Env: OUT (results; default /tmp/gpu-kit), PY (python3; the dry run uses .venv/bin/python), KIT_BUDGET_S (whole run,
# default 470 s: the device tool allows 600 s a command), BENCH_ONLY (workloads for gpu_bench --only).
# With the device tool: run(command="bash bench/gpu_kit.sh run", carry=[".gpu-wheels"], timeout_s=560)
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
WHEELS=.gpu-wheels
OUT="${OUT:-/tmp/gpu-kit}"; mkdir -p "$OUT"
started=$(date +%s)

if [ "$mode" = fetch ]; then
  mkdir -p "$WHEELS"
  grep -v '^#' bench/gpu_wheels.txt | grep -v '^$' | while read -r spec; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$WHEELS" "$spec" \
      || python3 -m pip wheel -q --no-deps -w "$WHEELS" "$spec" \
      || echo "!! could not fetch $spec" >&2  # a pure-Python sdist (antlr4-python3-runtime) is built into a wheel
  done
  du -sh "$WHEELS"; exit 0
fi
[ "$mode" = run ] || { echo "usage: bash bench/gpu_kit.sh fetch|run" >&2; exit 2; }

{
  echo "== gpu kit $(date -u +%FT%TZ) on $(hostname), $(nproc) cores"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "(no nvidia-smi)"
  if [ -n "${GPU_KIT_DRY_RUN:-}" ]; then
    PY="${PY:-.venv/bin/python}"; device=cpu; dry=--dry-run
  else
    PY="${PY:-python3}"; device=cuda; dry=
    t=$(date +%s)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
      || { echo "!! wheel install failed"; exit 3; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    echo "installed $(ls "$WHEELS" | wc -l) wheels in $(( $(date +%s) - t )) s"
  fi
  export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false GRADIO_ANALYTICS_ENABLED=False MPLBACKEND=Agg
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, \
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
  echo "== GPU tests"
  timeout -k 5 120 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py -rs 2>&1 | tee "$OUT/gpu-tests.log" | tail -25
  echo "== bench (budget $(( ${KIT_BUDGET_S:-470} - ($(date +%s) - started) )) s)"
  left=$(( ${KIT_BUDGET_S:-470} - ($(date +%s) - started) - 10 ))
  timeout -k 5 "$(( left + 5 ))" $PY -m bench.gpu_bench --device "$device" $dry --budget "$left" --out "$OUT" \
    ${BENCH_ONLY:+--only $BENCH_ONLY}
  echo "== kit exit $? after $(( $(date +%s) - started )) s"
} 2>&1 | tee "$OUT/gpu-kit.log"
