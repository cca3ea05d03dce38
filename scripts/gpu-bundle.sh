#!/usr/bin/env bash
# Builds aero with the CUDA backend on this (GPU-less) machine and gathers everything the GPU
# machine needs to run it into .gpu-bundle/, which scripts/test-gpu.sh runs from there:
#   bin/    aero, aero-run, aero-cuda-matmul-bench (stripped)
#   tests/  cuda_backend_test, cuda_matmul_test, cli_test (stripped)
#   lib/    every shared library they link that is not the C/C++ runtime (glibc, libgcc_s,
#           libstdc++: the GPU machine's are newer) nor CUDA's (the driver's libcuda and the
#           toolkit's libraries: the GPU machine has its own, and they are hundreds of MiB)
#   shared/ the Hugging Face fixture models the GPU tests compare against
#   scripts/test-gpu.sh
# Environment: AERO_CUDA_ARCHITECTURES (default 90: H100/H200), JOBS (default 2),
# BUILD_DIR (default build-gpu), SHARED (default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD_DIR:-build-gpu}
bundle=$root/.gpu-bundle
shared=${SHARED:-$root/../shared}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAERO_CUDA=ON \
  -DAERO_CUDA_ARCHITECTURES="${AERO_CUDA_ARCHITECTURES:-90}" -DAERO_BUILD_TESTS=ON -DAERO_BUILD_BENCH=ON >/dev/null
ninja -C "$build" -j"${JOBS:-2}" aero_cli aero_run cuda_backend_test cuda_matmul_test cli_test aero_cuda_matmul_bench

rm -rf "$bundle"
mkdir -p "$bundle"/{bin,tests,lib,scripts}
cp "$build"/bin/aero "$build"/bin/aero-run "$build"/bin/aero-cuda-matmul-bench "$bundle"/bin/
cp "$build"/tests/cuda_backend_test "$build"/tests/cuda_matmul_test "$build"/tests/cli_test "$bundle"/tests/
strip --strip-unneeded "$bundle"/bin/* "$bundle"/tests/*
cp scripts/test-gpu.sh "$bundle"/scripts/
mkdir -p "$bundle"/bench && cp bench/build_llama_cpp.sh "$bundle"/bench/

# The shared libraries, by the path the loader resolves here.
runtime='^(linux-vdso|ld-linux|libc\.so|libm\.so|libmvec|libpthread|libdl\.so|librt\.so|libresolv|libutil\.so|libgcc_s|libstdc\+\+)'
left_to_gpu_machine=()
while read -r name path; do
  if [[ $name =~ $runtime ]]; then continue; fi
  if [[ $name =~ ^lib(cuda|nvidia|cublas|cudart|nvrtc|nvJitLink|cusparse|cufft|curand|cusolver) || $path == /usr/local/cuda* ]]; then
    left_to_gpu_machine+=("$name")
    continue
  fi
  [ -f "$path" ] || { echo "gpu-bundle: $name is not found here ($path)" >&2; exit 1; }
  cp -L "$path" "$bundle/lib/$name"
done < <(ldd "$bundle"/bin/* "$bundle"/tests/* | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 } $2 == "=>" && $3 == "not" { print $1, "missing" }' | sort -u)
strip --strip-unneeded "$bundle"/lib/* 2>/dev/null || true

# The fixtures CudaForward and the CLI tests read: every model of fixtures/hf (under 10 MiB).
if [ -d "$shared/fixtures/hf" ]; then
  mkdir -p "$bundle/shared/fixtures"
  cp -r "$shared/fixtures/hf" "$bundle/shared/fixtures/"
fi
# The vocabularies the benchmark models are given, so llama.cpp loads the same files.
mkdir -p "$bundle/shared/fixtures/tokenizer"
cp "$shared"/fixtures/tokenizer/ggml-vocab-llama-{spm,bpe}.gguf "$bundle/shared/fixtures/tokenizer/" 2>/dev/null || true
[ -d "$bundle/shared" ] || echo "gpu-bundle: no fixtures at $shared/fixtures/hf: the GPU's forward tests will skip" >&2

glibcxx=$(objdump -T "$bundle"/bin/* "$bundle"/tests/* | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
glibc=$(objdump -T "$bundle"/bin/* "$bundle"/tests/* "$bundle"/lib/* | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
size=$(du -sm "$bundle" | cut -f1)
echo "gpu-bundle: $bundle, ${size} MiB: $(ls "$bundle"/lib | tr '\n' ' ')"
echo "gpu-bundle: needs on the GPU machine: $glibc, $glibcxx (Ubuntu 24.04 has GLIBC_2.39, GLIBCXX_3.4.32)${left_to_gpu_machine:+, and from its CUDA: ${left_to_gpu_machine[*]}}"
# What travels: one archive (the binaries carry every GPU kernel and compress 2.6x), under the
# device tool's 64 MiB. On the GPU machine: tar xzf .gpu-bundle.tgz && .gpu-bundle/scripts/test-gpu.sh
tar -czf "$root/.gpu-bundle.tgz" -C "$root" .gpu-bundle
archive=$(du -m "$root/.gpu-bundle.tgz" | cut -f1)
echo "gpu-bundle: $root/.gpu-bundle.tgz, ${archive} MiB"
if [ "$archive" -ge 60 ]; then echo "gpu-bundle: the archive is over 60 MiB" >&2; exit 1; fi
