#!/usr/bin/env bash
# Side by side on this machine: aero bench and llama.cpp's llama-bench on the same
# TinyLlama-1.1B-shaped GGUF files (by default F16, Q8_0, Q4_0, Q4_K_M, Q5_K_M), same threads, same run.
# Usage: bench/engine_vs_llama_cpp.sh [THREADS=2] [REPS=3] [TYPES="F16 Q8_0 Q4_0 Q4_K_M Q5_K_M"] [ROUNDS=1]
# ROUNDS > 1 alternates the two programs that many times per file: on a VM whose speed drifts over
# tens of seconds, one program's whole run can land in a slow spell that the other's misses.
# (TYPES may also name Q2_K, Q3_K, IQ4_XS, IQ4_NL, Q4_1, Q5_0, Q5_1, Q6_K: every file is made from
# the same F16 one; BF16 and F32 files are synthesized as such.)
# Models go to /tmp/aero-bench; llama.cpp is built outside the repository by
# bench/build_llama_cpp.sh. Every quantized file is made by aero quantize (its Q4_K_M is byte-identical
# with llama-quantize's, see docs/performance.md).
set -euo pipefail
threads="${1:-2}"
reps="${2:-3}"
types="${3:-F16 Q8_0 Q4_0 Q4_K_M Q5_K_M}"
rounds="${4:-1}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
aero="$repo/build/bin/aero"
vocab="$repo/../shared/fixtures/tokenizer/ggml-vocab-llama-spm.gguf"
models=/tmp/aero-bench
peer="$("$repo/bench/build_llama_cpp.sh")"
mkdir -p "$models"
vocab_flag=()
[ -f "$vocab" ] && vocab_flag=(--vocab "$vocab")
[ -f "$models/tl-F16.gguf" ] || "$aero" synth "$models/tl-F16.gguf" --arch llama --preset 1b "${vocab_flag[@]}"
for t in $types; do
  [ -f "$models/tl-$t.gguf" ] && continue
  case "$t" in  # float files are drawn as such (same shape, other random values); blocks come from the F16 one
    BF16 | F32) "$aero" synth "$models/tl-$t.gguf" --arch llama --preset 1b --type "$t" "${vocab_flag[@]}" ;;
    *) "$aero" quantize "$models/tl-F16.gguf" "$models/tl-$t.gguf" "$t" ;;
  esac
done

for t in $types; do
  for ((round = 1; round <= rounds; round++)); do
    echo "## $t$([ "$rounds" -gt 1 ] && echo ", round $round of $rounds")"
    "$aero" bench "$models/tl-$t.gguf" -p 128 -n 64 -t "$threads" -r "$reps"
    "$peer/llama-bench" -m "$models/tl-$t.gguf" -p 128 -n 64 -t "$threads" -r "$reps" 2>/dev/null | grep -E "^\| (model|llama)"
    echo
  done
done
