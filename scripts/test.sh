#!/usr/bin/env bash
# Sets up, then runs every test: the GoogleTest suite (Release), the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, the kernel and engine tests on emulated older
# CPUs, and each libFuzzer target for a bounded time.
#   FUZZ_SECONDS   seconds per fuzz target (default 60)
#   SKIP_SANITIZE=1, SKIP_DISPATCH=1, SKIP_FUZZ=1 to leave those stages out while iterating
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-60}

# Each stage's start, in seconds since the run began: CI has 45 minutes on 2 cores.
stage() { echo "== $1 (at ${SECONDS}s)"; }

scripts/setup.sh --deps

stage "Release build and tests"
# The CUDA backend compiles wherever nvcc is (its tests skip without a GPU); for one architecture
# here, which is enough to check it compiles (AERO_CUDA_ARCHITECTURES overrides).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAERO_CUDA_ARCHITECTURES="${AERO_CUDA_ARCHITECTURES:-90}" >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

# One clang build serves the sanitizer tests and the fuzz targets: AddressSanitizer and
# UndefinedBehaviorSanitizer everywhere, libFuzzer's coverage too, optimized (-O2: the tests run
# several times faster than at -O0 and the sanitizers see the same), without the CUDA backend
# (its kernels cannot run here, and nvcc takes no clang host compiler).
if [ "${SKIP_SANITIZE:-0}" != 1 ] || [ "${SKIP_FUZZ:-0}" != 1 ]; then
  stage "ASan + UBSan build (tests and fuzz targets)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAERO_SANITIZE=ON -DAERO_FUZZ=ON -DAERO_BUILD_BENCH=OFF \
    -DAERO_CUDA=OFF -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
  cmake --build build-asan -j "$jobs"
fi

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  stage "ASan + UBSan tests"
  # The CUDA tests are not built there; the node suites' browser test is the chat page's
  # rendering (no parsing of aero's: bad HTTP input has its own suite and fuzz target).
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -E '^server_node_chat_page$'
fi

if [ "${SKIP_DISPATCH:-0}" != 1 ]; then
  # The kernels are chosen at run time by what the CPU has: on a CPU of another generation
  # than this one, a kernel set compiled for a wider one must never run (an AVX-512 initializer
  # once killed every AVX2 machine with SIGILL). QEMU's user-mode emulator runs the Release
  # kernel tests, and the engine on every fixture and block format, as an AVX2 CPU (Haswell)
  # and as one with neither AVX2 nor AVX-512 (Nehalem: the scalar kernels).
  # (Haswell without the features its model names that TCG lacks, which would only warn, per thread.)
  engine_filter='HfFixtures/Forward.LogitsEqualTransformers/*:HfFixtures/Quantized.*'
  for cpu in Haswell-v4,-invpcid,-spec-ctrl,-pcid,-x2apic,-tsc-deadline Nehalem; do
    stage "kernel and engine tests on an emulated ${cpu%%,*} CPU"
    qemu-x86_64 -cpu "$cpu" build/tests/quant_test --gtest_brief=1 || { echo "quant_test failed on an emulated $cpu CPU"; exit 1; }
    qemu-x86_64 -cpu "$cpu" build/tests/engine_test --gtest_brief=1 --gtest_filter="$engine_filter" ||
      { echo "engine_test failed on an emulated $cpu CPU"; exit 1; }
  done
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  stage "libFuzzer targets, ${fuzz_seconds}s each"
  fuzz/run.sh build-asan/fuzz "$fuzz_seconds"
fi
stage "all tests passed"
