#!/usr/bin/env bash
# Builds llama.cpp, the peer for side-by-side benchmarks, from the source bundle the npm package
# node-llama-cpp ships — outside this repository. Prints the bin folder.
# Usage: bench/build_llama_cpp.sh [DIR]   (default /tmp/aero-peer)
# Environment:
#   LLAMA_SRC  a source archive (.tar.xz/.tar.gz, e.g. made with `git archive` from the bundle) or a
#              git bundle to build from instead of fetching node-llama-cpp with npm (the GPU machine
#              has no network: carry one there)
#   CUDA=1     the CUDA build (-DGGML_CUDA=ON, architectures $CUDA_ARCH, default 90) instead of the
#              CPU one (-DGGML_NATIVE=ON)
#   TARGETS    what to build (default: llama-bench llama-tokenize llama-quantize; with CUDA=1
#              llama-bench); naming llama-server turns on llama.cpp's server build
#   JOBS       parallel jobs (default: every core)
set -euo pipefail
dir="${1:-/tmp/aero-peer}"
mkdir -p "$dir"
cd "$dir"
if [ ! -d llama.cpp ]; then
  if [ -n "${LLAMA_SRC:-}" ]; then
    case "$LLAMA_SRC" in
      *.bundle) git -c advice.detachedHead=false clone -q "$LLAMA_SRC" llama.cpp ;;
      *) mkdir -p llama.cpp && tar xf "$LLAMA_SRC" -C llama.cpp ;;
    esac
  else
    [ -f package/llama/gitRelease.bundle ] || { npm pack --silent node-llama-cpp >/dev/null 2>&1 && tar xzf node-llama-cpp-*.tgz; }
    git -c advice.detachedHead=false clone -q package/llama/gitRelease.bundle llama.cpp
  fi
fi
common=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
        -DLLAMA_BUILD_TOOLS=ON)
if [ "${CUDA:-0}" = 1 ]; then
  build=llama.cpp/build-cuda
  flags=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" -DGGML_NATIVE=ON -DLLAMA_BUILD_SERVER=ON)
  command -v nvcc >/dev/null || flags+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
  read -r -a targets <<<"${TARGETS:-llama-bench}"
else
  build=llama.cpp/build
  flags=(-DGGML_NATIVE=ON -DLLAMA_BUILD_SERVER=OFF)
  read -r -a targets <<<"${TARGETS:-llama-bench llama-tokenize llama-quantize}"
fi
if [[ " ${targets[*]} " == *" llama-server "* ]]; then
  flags=("${flags[@]/-DLLAMA_BUILD_SERVER=OFF/-DLLAMA_BUILD_SERVER=ON}")
fi
generator=()
command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && generator=(-G Ninja)
cmake -S llama.cpp -B "$build" "${generator[@]}" "${common[@]}" "${flags[@]}" >"$dir/build.log" 2>&1 ||
  { tail -20 "$dir/build.log" >&2; exit 1; }
cmake --build "$build" -j"${JOBS:-$(nproc)}" --target "${targets[@]}" >>"$dir/build.log" 2>&1 ||
  { tail -20 "$dir/build.log" >&2; exit 1; }
echo "$dir/$build/bin"
