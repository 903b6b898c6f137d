#!/usr/bin/env bash
# One short check for a machine with a CUDA GPU: environment, GPU parity tests, backend table.
#
#   bash benchmarks/gpu_check.sh [OUTDIR]        # ~3-5 minutes on an H100/H200
#
# Uses $PYTHON (default python3) as it is: torch with CUDA, numpy, onnx, onnxruntime, pytest
# (TensorRT when importable). No install step: GPU machines here reach no package index.
# Real feature rows for the parity tests: $MEXLIVE_FEATURES (a folder of feature .npz files,
# e.g. `python -m stream.datasets.features` output); without it the tests use random rows only.
# Writes env.txt, pytest.txt and backends.md to OUTDIR (default $OUT or ./gpu_check).
set -u
PY=${PYTHON:-python3}
OUTDIR=${1:-${OUT:-gpu_check}}
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

{
  echo "# gpu_check $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || status=1
  "$PY" - <<'PY'
import importlib, platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
print("cuda available:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
for name in ("onnx", "onnxruntime", "tensorrt"):
    try:
        m = importlib.import_module(name)
        extra = m.get_available_providers() if name == "onnxruntime" else ""
        print(f"{name} {m.__version__} {extra}")
    except ImportError as exc:
        print(f"{name}: not importable ({exc})")
PY
} 2>&1 | tee "$OUTDIR/env.txt"

echo "## parity tests" | tee "$OUTDIR/pytest.txt"
timeout 300 "$PY" -m pytest -q -rs -p no:cacheprovider tests/engines/runtime/test_gpu.py \
  tests/engines/runtime/test_backends.py tests/engines/models/test_ssm.py tests/engines/models/test_spotter.py 2>&1 \
  | tee -a "$OUTDIR/pytest.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

int8_args=()
if "$PY" -c "import tensorrt" 2>/dev/null && [ -n "${MEXLIVE_FEATURES:-}" ]; then
  # FP16 and INT8 QDQ step graphs for TensorRT (quantized with ONNX Runtime on the CPU).
  timeout 300 "$PY" -m calibration.int8 --features "$MEXLIVE_FEATURES" --out "$OUTDIR/int8" \
    >"$OUTDIR/int8.txt" 2>&1 && int8_args=(--int8-dir "$OUTDIR/int8")
fi

echo "## backends" | tee "$OUTDIR/backends.md"
timeout 400 "$PY" -m benchmarks.bench_backends --frames 300 --batches 1,16,64,256 \
  --gpu-batches 1,16,64,256,1024 "${int8_args[@]}" 2>&1 | tee -a "$OUTDIR/backends.md"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "gpu_check: exit $status (files in $OUTDIR)"
exit $status
