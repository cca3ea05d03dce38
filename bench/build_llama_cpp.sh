#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-tokenize and llama-quantize, the peer for side-by-side benchmarks,
# from the source bundle the npm package node-llama-cpp ships — outside this repository.
# Usage: bench/build_llama_cpp.sh [DIR]   (default /tmp/aero-peer; prints the bin folder)
set -euo pipefail
dir="${1:-/tmp/aero-peer}"
mkdir -p "$dir"
cd "$dir"
if [ ! -d llama.cpp ]; then
  [ -f package/llama/gitRelease.bundle ] || { npm pack --silent node-llama-cpp >/dev/null 2>&1 && tar xzf node-llama-cpp-*.tgz; }
  git -c advice.detachedHead=false clone -q package/llama/gitRelease.bundle llama.cpp
fi
cmake -S llama.cpp -B llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON >"$dir/build.log" 2>&1
cmake --build llama.cpp/build -j"$(nproc)" --target llama-bench llama-tokenize llama-quantize >>"$dir/build.log" 2>&1 ||
  { tail -20 "$dir/build.log"; exit 1; }
echo "$dir/llama.cpp/build/bin"
