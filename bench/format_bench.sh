#!/usr/bin/env bash
# Container benchmarks on a multi-GB model (issue: Foundation). Prints a markdown table.
#   bench/format_bench.sh [SIZE_GIB=4] [DIR=/tmp/aero-bench]
# - aero info on the multi-GB file: it must touch only header, TOC and metadata.
# - validate --full with 1 and 2 threads, side by side with b3sum on the same file.
# - convert safetensors -> .aero against cp of the same file.
# The file stays in the page cache between runs (24 GiB of RAM), so these are warm-cache
# numbers: hashing speed, not disk speed.
set -euo pipefail
cd "$(dirname "$0")/.."
size_gib=${1:-4}
dir=${2:-/tmp/aero-bench}
aero=build/bin/aero
mkdir -p "$dir"
st=$dir/big.safetensors
if [ ! -f "$st" ] || [ "$(stat -c %s "$st")" -lt $((size_gib << 30)) ]; then
  python3 - "$st" "$size_gib" <<'PY'
import json, os, struct, sys
path, gib = sys.argv[1], int(sys.argv[2])
n = gib * 8                      # tensors of 128 MiB (f16 [8192, 8192])
per = 8192 * 8192 * 2
header = {f"model.layers.{i}.mlp.up_proj.weight": {"dtype": "F16", "shape": [8192, 8192],
          "data_offsets": [i * per, (i + 1) * per]} for i in range(n)}
h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    block = os.urandom(64 << 20)
    for _ in range(n * per // len(block)): f.write(block)
PY
fi

secs() { python3 -c 'import sys,time,subprocess; t=time.perf_counter(); subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL); print(f"{time.perf_counter()-t:.4f}")' "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bytes=$(stat -c %s "$st")

cat "$st" >/dev/null
t_cp=$( { for i in 1 2 3; do rm -f "$dir/copy"; secs cp "$st" "$dir/copy"; done; } | median); rm -f "$dir/copy"
t_conv=$( { for i in 1 2 3; do secs $aero convert "$st" "$dir/big.aero" --integrity; done; } | median)
file=$dir/big.aero
fbytes=$(stat -c %s "$file")
t_info=$( { for i in $(seq 9); do secs $aero info "$file"; done; } | median)
t_v1=$( { for i in 1 2 3; do secs $aero validate --full -t 1 "$file"; done; } | median)
t_v2=$( { for i in 1 2 3; do secs $aero validate --full -t 2 "$file"; done; } | median)
t_b1=$( { for i in 1 2 3; do secs b3sum --num-threads 1 "$file"; done; } | median)
t_b2=$( { for i in 1 2 3; do secs b3sum "$file"; done; } | median)
# validate --full with PHSH hashes each shard twice in one pass (chunk + pages): 2x the bytes.
python3 - "$bytes" "$fbytes" "$t_cp" "$t_conv" "$t_info" "$t_v1" "$t_v2" "$t_b1" "$t_b2" <<'PY'
import sys
b, fb, cp, conv, info, v1, v2, b1, b2 = map(float, sys.argv[1:])
g = fb / 1e9
print(f"machine: {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}, {__import__('os').cpu_count()} cores")
print(f"file: {fb/2**30:.2f} GiB .aero with IHSH + PHSH (4 MiB pages), warm page cache\n")
print("| measurement | time | rate |")
print("|---|---|---|")
print(f"| `aero info` (median of 9, process start included) | {info*1000:.1f} ms | — |")
print(f"| `aero validate --full -t 1` (chunk + page hashes, one pass) | {v1:.2f} s | {g/v1:.2f} GB/s of file, {2*g/v1:.2f} GB/s hashed |")
print(f"| `aero validate --full -t 2` | {v2:.2f} s | {g/v2:.2f} GB/s of file, {2*g/v2:.2f} GB/s hashed |")
print(f"| `b3sum --num-threads 1` same file | {b1:.2f} s | {g/b1:.2f} GB/s |")
print(f"| `b3sum` (all threads) same file | {b2:.2f} s | {g/b2:.2f} GB/s |")
print(f"| `aero convert` safetensors → .aero --integrity | {conv:.2f} s | {b/1e9/conv:.2f} GB/s ({cp/conv*100:.0f}% of cp) |")
print(f"| `cp` of the safetensors file | {cp:.2f} s | {b/1e9/cp:.2f} GB/s |")
PY
