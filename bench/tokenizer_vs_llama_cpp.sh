#!/usr/bin/env bash
# Encode throughput, aero vs llama.cpp's llama-tokenize, on the same vocabularies and the same
# English text, one core each. Both tools are timed end to end on a large text and on a tiny
# one; the difference is the encoding time (loading the vocabulary cancels out). The token ids
# of both must be identical.
#   bench/tokenizer_vs_llama_cpp.sh [RUNS]
# Needs build/bin/aero, ../shared, and llama-tokenize (bench/build_llama_cpp.sh builds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
shared=${AERO_SHARED:-$root/../shared}
aero=$root/build/bin/aero
llama=${LLAMA_CPP_BIN:-/tmp/aero-peer/llama.cpp/build/bin}/llama-tokenize
work=${TMPDIR:-/tmp}/aero-tokbench
mkdir -p "$work"
# English prose: the copyright texts Debian installs (licenses, notices), 6 MB of them.
if [ ! -s "$work/en.txt" ]; then
  # (head closes the pipe early: the pipeline's status is not an error)
  { find /usr/share/doc -name copyright -type f | sort | xargs cat 2>/dev/null | iconv -f utf-8 -t utf-8 -c | head -c 6000000 >"$work/en.txt"; } || true
fi
echo "hi" >"$work/small.txt"
bytes=$(stat -c %s "$work/en.txt")

best() {  # best wall time of $runs runs of a command, in seconds
  local t best=999999
  for _ in $(seq "$runs"); do
    t=$( { /usr/bin/time -f %e "$@" >/dev/null; } 2>&1 | tail -1)
    best=$(echo "$t $best" | awk '{print ($1 < $2) ? $1 : $2}')
  done
  echo "$best"
}

echo "| vocabulary | aero MB/s | llama.cpp MB/s | aero / llama.cpp | same ids |"
echo "|---|---|---|---|---|"
for v in llama-spm llama-bpe qwen2 gpt-2 phi-3; do
  vocab=$shared/fixtures/tokenizer/ggml-vocab-$v.gguf
  a_big=$(best taskset -c 0 "$aero" tokenize "$vocab" -f "$work/en.txt" --ids-only)
  a_small=$(best taskset -c 0 "$aero" tokenize "$vocab" -f "$work/small.txt" --ids-only)
  l_big=$(best taskset -c 0 "$llama" -m "$vocab" -f "$work/en.txt" --ids --log-disable --no-escape)
  l_small=$(best taskset -c 0 "$llama" -m "$vocab" -f "$work/small.txt" --ids --log-disable --no-escape)
  same=no
  if cmp -s <("$aero" tokenize "$vocab" -f "$work/en.txt" --ids-only) \
            <("$llama" -m "$vocab" -f "$work/en.txt" --ids --log-disable --no-escape); then same=yes; fi
  awk -v v="$v" -v b="$bytes" -v ab="$a_big" -v as="$a_small" -v lb="$l_big" -v ls="$l_small" -v s="$same" 'BEGIN {
    a = b / 1e6 / (ab - as); l = b / 1e6 / (lb - ls);
    printf "| %s | %.1f | %.1f | %.2f× | %s |\n", v, a, l, a / l, s }'
done
