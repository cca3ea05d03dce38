#!/usr/bin/env bash
# The disk tier side by side with llama.cpp's mmap: a model about 3x larger than a cgroup memory
# cap, page cache dropped before each run, token generation measured by aero bench and llama-bench
# under the same cap, next to this disk's O_DIRECT sequential read speed measured here first (the
# ceiling: each generated token reads every layer that is not cached).
# Usage: bench/disk_tier_vs_llama_cpp.sh [MODEL] [TOKENS=8] [THREADS=2]
#   MODEL  a GGUF (default: a TinyLlama-1.1B-shaped Q8_0 made by aero synth, 1.1 GiB)
# Environment: CAP (the cgroup limit, e.g. 400M; default a third of the model), SKIP_PEER=1 (aero
# only), AERO (the binary; default build/bin/aero). Needs root (cgroups, drop_caches); llama.cpp is
# built outside the repository by bench/build_llama_cpp.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
aero="${AERO:-$repo/build/bin/aero}"
model="${1:-}"
tokens="${2:-8}"
threads="${3:-2}"
[ "$(id -u)" -eq 0 ] || { echo "disk_tier_vs_llama_cpp: needs root (cgroup limits, dropping the page cache)" >&2; exit 1; }
if [ -z "$model" ]; then
  model=/tmp/aero-bench/tl-Q8_0-disk.gguf
  mkdir -p /tmp/aero-bench
  # With a real vocabulary: llama.cpp refuses a model without one.
  vocab=$repo/../shared/fixtures/tokenizer/ggml-vocab-llama-spm.gguf
  with=()
  [ -f "$vocab" ] && with=(--vocab "$vocab")
  [ -f "$model" ] || "$aero" synth "$model" --arch llama --preset 1b --type Q8_0 "${with[@]}" >/dev/null
fi
size=$(stat -c %s "$model")
cap_bytes=$(( size / 3 ))
[ -n "${CAP:-}" ] && cap_bytes=$(numfmt --from=iec "${CAP%B}")
echo "model: $model ($(numfmt --to=iec "$size")B), cgroup memory cap $(numfmt --to=iec "$cap_bytes")B, $tokens tokens, $threads threads"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "  (could not drop the page cache)" >&2; }

# A cgroup with the cap (v2 memory.max or v1 memory.limit_in_bytes); `capped CMD...` runs CMD in it.
name="aero-disk-bench-$$"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cg=/sys/fs/cgroup/$name
  mkdir "$cg"
  echo "$cap_bytes" >"$cg/memory.max"
  echo 0 >"$cg/memory.swap.max" 2>/dev/null || true
else
  cg=/sys/fs/cgroup/memory/$name
  mkdir "$cg"
  echo "$cap_bytes" >"$cg/memory.limit_in_bytes"
  echo 0 >"$cg/memory.swappiness" 2>/dev/null || true
fi
cleanup() { rmdir "$cg" 2>/dev/null || true; }
trap cleanup EXIT
capped() { bash -c 'echo $$ >"$0/cgroup.procs" && exec "${@}"' "$cg" "$@"; }

echo "## O_DIRECT sequential read (dd, 4 MiB blocks)"
drop_caches
dd_out=$(dd if="$model" of=/dev/null bs=4M iflag=direct 2>&1 | tail -1)
echo "  $dd_out"
disk_gbs=$(awk -v s="$size" '{ for (i = 1; i <= NF; i++) if ($i == "s,") t = $(i - 1) } END { printf "%.3f", s / t / 1e9 }' <<<"$dd_out")
echo "  = $disk_gbs GB/s"

echo "## aero (disk tier: the RAM budget comes from the cgroup's limit)"
drop_caches
aero_log=$(mktemp)
capped "$aero" bench "$model" -p 0 -n "$tokens" -r 1 -t "$threads" | tee "$aero_log"
aero_tps=$(awk -F'|' '$2 ~ /^ tg/ { split($3, a, " "); print a[1] }' "$aero_log")
aero_gbs=$(awk -F'|' '$2 ~ /^ tg/ { gsub(/ /, "", $6); print $6 }' "$aero_log")
rm -f "$aero_log"

peer_tps="-"
if [ -z "${SKIP_PEER:-}" ]; then
  peer="$("$repo/bench/build_llama_cpp.sh")"
  echo "## llama.cpp (mmap)"
  drop_caches
  peer_log=$(mktemp)
  capped "$peer/llama-bench" -m "$model" -p 0 -n "$tokens" -r 1 -t "$threads" 2>/dev/null | tee "$peer_log"
  peer_tps=$(awk -F'|' '$0 ~ /tg/ { split($(NF - 1), a, " "); print a[1] }' "$peer_log" | tail -1)
  rm -f "$peer_log"
fi

echo
echo "| disk O_DIRECT GB/s | aero tg t/s | aero GB/s of weights | of disk speed | llama.cpp tg t/s |"
echo "|---|---|---|---|---|"
echo "| $disk_gbs | $aero_tps | $aero_gbs | $(awk -v a="$aero_gbs" -v d="$disk_gbs" 'BEGIN { if (d > 0 && a > 0) printf "%.0f%%", 100 * a / d; else print "-" }') | $peer_tps |"
