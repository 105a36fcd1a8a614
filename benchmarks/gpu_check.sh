#!/usr/bin/env bash
# Every GPU check in one go, for a machine with an NVIDIA GPU, the CUDA toolkit (nvcc) and
# this project's virtualenv active (the README's first command made it):
#
#   bash benchmarks/gpu_check.sh [--rounds 5] [--tokens 128]
#
# 1. rebuilds llama.cpp with CUDA into the virtualenv (pip's cache is bypassed: the CPU
#    build sits there), unless the installed one has a GPU backend already;
# 2. runs the unit tests of the GPU paths (tests/plugins/test_llamacpp_gpu.py) and the
#    llama.cpp backend's;
# 3. runs benchmarks/gpu_check.py: the default model on cpu and cuda:0, llama.cpp and
#    torch, side by side through one queen; it fails when a GPU job fails, when the hive
#    does not list cuda:0 for a backend, or when llama.cpp did not offload.
# Figures go to stdout (markdown) and gpu-check.json; nothing here ran on a GPU in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import rbee_core" 2>/dev/null || { echo "activate the project's virtualenv first" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
version=$(python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
if [ -z "$(python -c 'from rbee_llamacpp.gpu import gpu_libraries; print(*gpu_libraries())')" ]; then
    echo "building llama-cpp-python $version with CUDA (several minutes)" >&2
    CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=ON -DLLAVA_BUILD=OFF" python -m pip install --quiet \
        --force-reinstall --no-cache-dir --no-deps "llama-cpp-python==$version"
fi
python -c "import llama_cpp; assert llama_cpp.llama_supports_gpu_offload(), 'no GPU offload'"
python -m pytest -q tests/plugins/test_llamacpp_gpu.py tests/plugins/test_llamacpp.py
python benchmarks/gpu_check.py --json gpu-check.json "$@"
