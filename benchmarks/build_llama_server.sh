#!/usr/bin/env bash
# Build llama.cpp's own llama-server, from the llama.cpp that llama-cpp-python 0.3.36 vendors
# (the library rbee's llama.cpp backend runs on), for benchmarks/bench_engines.py.
#
#     bash benchmarks/build_llama_server.sh [BUILD_DIR]   # default: ~/.cache/rbee-bench
#
# Prints the binary's path on its last line; a second run finds the binary and builds nothing.
# Needs cmake and a C/C++ compiler; the build takes 6+ minutes on 2 cores. GGML_NATIVE, but
# never AMX: on some VMs llama.cpp's AMX kernels die with SIGILL (as the llama-cpp-python
# rbee is tested with was built). A sdist already in BUILD_DIR is used as it is (no download).
set -euo pipefail

VERSION=0.3.36
BUILD_DIR=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/rbee-bench}
PYTHON=${PYTHON:-python3}
SDIST="$BUILD_DIR/llama_cpp_python-$VERSION.tar.gz"
SRC="$BUILD_DIR/llama_cpp_python-$VERSION/vendor/llama.cpp"
BIN="$SRC/build/bin/llama-server"
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"

if [[ -x "$BIN" ]]; then
    echo "$BIN"
    exit 0
fi
mkdir -p "$BUILD_DIR"
if [[ ! -f "$SDIST" ]]; then
    echo "downloading the llama-cpp-python $VERSION sdist into $BUILD_DIR" >&2
    "$PYTHON" -m pip download --no-deps --no-binary :all: --dest "$BUILD_DIR" \
        "llama-cpp-python==$VERSION" >&2
fi
if [[ ! -d "$SRC" ]]; then
    tar -xzf "$SDIST" -C "$BUILD_DIR"
fi
cd "$SRC"
echo "building llama-server in $SRC/build (6+ minutes)" >&2
cmake -B build -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
    "-DCMAKE_C_FLAGS=$NO_AMX" "-DCMAKE_CXX_FLAGS=$NO_AMX" >&2
cmake --build build --target llama-server -j2 >&2
echo "$BIN"
