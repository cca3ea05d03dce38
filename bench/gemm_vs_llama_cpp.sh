#!/usr/bin/env bash
# Prompt processing's matrix product per FLOP, aero against llama.cpp on this machine, same run:
# 128 tokens of f32 activations through a 5632 × 2048 weight matrix (TinyLlama's feed-forward
# shape, as aero_gemv_bench defines it) per weight format, 1 and 2 threads. llama.cpp's side is its own operator benchmark,
# `test-backend-ops perf -o MUL_MAT`, built outside the repository from the bundle
# bench/build_llama_cpp.sh unpacks, with two local edits made here: a MUL_MAT case of this shape
# among its perf cases, and its thread count from AERO_THREADS (it runs half the cores otherwise).
# aero's side is `aero_gemv_bench … gemm`, timed the same way (mean over a batch of at least a
# second). Each side runs REPS times, alternating; the best of each is printed.
# Usage: bench/gemm_vs_llama_cpp.sh [REPS=3] [TYPES="F16 BF16 Q8_0 Q4_0 Q4_K Q6_K"]
set -euo pipefail
reps="${1:-3}"
types="${2:-F16 BF16 Q8_0 Q4_0 Q4_K Q6_K}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
aero_bench="$repo/build/bin/aero_gemv_bench"
[ -x "$aero_bench" ] || { echo "error: build aero first ($aero_bench missing)" >&2; exit 1; }
# The shape is aero_gemv_bench's (named once, there): read from its table header, which it prints
# before timing anything when no format matches.
read -r m k n < <("$aero_bench" 1 0 NONE best gemm | sed -nE 's/^\| GEMM ([0-9]+) x ([0-9]+), ([0-9]+) tokens.*/\1 \2 \3/p')
[ -n "${n:-}" ] || { echo "error: could not read the GEMM shape from $aero_bench" >&2; exit 1; }
peer_bin="$("$repo/bench/build_llama_cpp.sh")"
src="$(cd "$peer_bin/../.." && pwd)"
test_file="$src/tests/test-backend-ops.cpp"
marker="aero: m=$m k=$k n=$n"
if ! grep -q "$marker" "$test_file"; then
  perl -0pi -e 's/(\n    for \(int bs : \{1, 2, 3, 4, 5, 8, 512\}\) \{\n)/\n    for (ggml_type type_a : all_types) {  \/\/ '"$marker"'\n        test_cases.emplace_back(new test_mul_mat(type_a, GGML_TYPE_F32, '"$m, $n, $k"', {1, 1}, {1, 1}));\n    }$1/' "$test_file"
  grep -q 'getenv("AERO_THREADS")' "$test_file" ||
    perl -pi -e 's/std::max<int>\(1, N_THREADS\/2\)/getenv("AERO_THREADS") ? atoi(getenv("AERO_THREADS")) : std::max<int>(1, N_THREADS\/2)/' "$test_file"
  if ! grep -q "$marker" "$test_file" || ! grep -q 'getenv("AERO_THREADS")' "$test_file"; then
    echo "error: could not edit $test_file (llama.cpp version changed?)" >&2
    exit 1
  fi
fi
cmake -S "$src" -B "$src/build-tests" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >"$src/build-tests.log" 2>&1
cmake --build "$src/build-tests" -j"$(nproc)" --target test-backend-ops >>"$src/build-tests.log" 2>&1 ||
  { tail -20 "$src/build-tests.log"; exit 1; }
peer="$src/build-tests/bin/test-backend-ops"

flop=$((2 * m * k * n))
lower="$(echo "$types" | tr '[:upper:] ' '[:lower:]|' | sed 's/q\([0-9]\)_k/q\1_K/g')"
declare -A best
keep_best() {  # key value: keep the larger GFLOP/s
  if [ -z "${best[$1]:-}" ] || awk "BEGIN{exit !($2 > ${best[$1]})}"; then best[$1]="$2"; fi
}
for ((r = 0; r < reps; r++)); do
  for th in 1 2; do
    while read -r type us; do
      keep_best "llama $type $th" "$(awk "BEGIN{printf \"%.1f\", $flop / $us / 1e3}")"
    done < <(AERO_THREADS=$th "$peer" perf -b CPU -o MUL_MAT -p "type_a=($lower),type_b=f32,m=$m,n=$n,k=$k," 2>&1 |
      sed -nE 's/.*type_a=([a-zA-Z0-9_]+),.* ([0-9.]+) us\/run.*/\1 \2/p' | tr '[:lower:]' '[:upper:]')
  done
  while IFS='|' read -r _ type g1 _ g2 _; do
    type="$(echo "$type" | tr -d ' ')"
    keep_best "aero $type 1" "$(echo "$g1" | tr -d ' ')"
    keep_best "aero $type 2" "$(echo "$g2" | tr -d ' ')"
  done < <("$aero_bench" 1 1 "$(echo "$types" | tr ' ' ',')" best gemm | grep -E "^\| [A-Z0-9_]+ \|")
done

echo "| format | threads | aero GFLOP/s | llama.cpp GFLOP/s | aero / llama.cpp |"
echo "|---|---|---|---|---|"
for t in $types; do
  for th in 1 2; do
    a="${best[aero $t $th]:-?}" l="${best[llama $t $th]:-?}"
    echo "| $t | $th | $a | $l | $(awk "BEGIN{ if (\"$l\" == \"?\" || \"$a\" == \"?\") print \"?\"; else printf \"%.2f\", $a / $l }") |"
  done
done
