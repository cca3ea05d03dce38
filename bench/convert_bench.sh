#!/usr/bin/env bash
# GGUF -> .aero conversion speed and memory against cp on the same disk (issue: Model files).
#   bench/convert_bench.sh [DIR=/tmp/aero-bench] [RUNS=5]
# Needs DIR/big.gguf; bench/format_bench.sh makes big.safetensors, and this script turns it
# into a GGUF (metadata borrowed from a vocab-only GGUF of the shared fixtures) when absent.
# Every run starts after `sync`, so no run pays for the previous one's writeback. aero
# fsyncs before its atomic rename; cp does not, so both plain cp and cp + sync are shown.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/aero-bench}
runs=${2:-5}
aero=$PWD/build/bin/aero
if [ ! -f "$dir/big.gguf" ]; then
  [ -f "$dir/big.safetensors" ] || bench/format_bench.sh 4 "$dir" >/dev/null
  $aero convert "$dir/big.safetensors" "$dir/big.gguf" --config ../shared/fixtures/tokenizer/ggml-vocab-llama-spm.gguf
fi
cd "$dir"
cat big.gguf >/dev/null
measure() {  # label, command...: median seconds and peak RSS over $runs runs
  local label=$1; shift
  local times=() rss=0
  for _ in $(seq "$runs"); do
    rm -f out.aero copy.gguf; sync
    local line
    /usr/bin/time -o time.txt -f "%e %M" "$@" >/dev/null 2>&1
    line=$(tail -1 time.txt)
    times+=("${line% *}")
    (( ${line#* } > rss )) && rss=${line#* }
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$label $median $rss"
}
{
  measure cp cp big.gguf copy.gguf
  measure cp+sync sh -c 'cp big.gguf copy.gguf && sync copy.gguf'
  measure convert "$aero" convert big.gguf out.aero
  measure convert-integrity "$aero" convert big.gguf out.aero --integrity
} | python3 -c '
import sys, os
rows = {l.split()[0]: (float(l.split()[1]), int(l.split()[2])) for l in sys.stdin}
size = os.path.getsize("big.gguf") / 1e9
print(f"file: big.gguf, {size:.2f} GB; median of '"$runs"' runs each, sync before every run\n")
print("| command | median time | rate | vs cp | vs cp + sync | peak RSS |")
print("|---|---|---|---|---|---|")
cp, cps = rows["cp"][0], rows["cp+sync"][0]
for k, (t, r) in rows.items():
    print(f"| `{k}` | {t:.2f} s | {size/t:.2f} GB/s | {cp/t*100:.0f}% | {cps/t*100:.0f}% | {r/1024:.0f} MB |")
'
rm -f out.aero copy.gguf time.txt
