#!/usr/bin/env bash
# Aggregate generation tokens/s of `aero serve` and llama.cpp's llama-server on the same GGUF, at
# 1, 4, 16 and 64 concurrent streams (each server started with as many slots as streams).
# Usage: bench/serve_vs_llama_server.sh [MODEL.gguf]
#   MODEL     default: a TinyLlama-1.1B-shaped Q4_0 model made by `aero synth` (random weights)
# Environment:
#   STREAMS="1 4 16 64"  concurrencies   TOKENS=64  tokens per request   REQUESTS=2  per stream
#   THREADS=nproc        CTX=512 tokens per slot   DEVICE=cpu (cuda: llama-server gets -ngl 99)
#   LLAMA_BIN            a folder holding llama-server; default: built by bench/build_llama_cpp.sh
#                        (TARGETS=llama-server; LLAMA_SRC=.../llama-src.tar.xz to build from an archive)
#   ONLY=aero|llama      run one side only
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
aero="$repo/build/bin/aero"
streams_list="${STREAMS:-1 4 16 64}"
tokens="${TOKENS:-64}"
requests="${REQUESTS:-2}"
threads="${THREADS:-$(nproc)}"
ctx="${CTX:-512}"
device="${DEVICE:-cpu}"
only="${ONLY:-}"
port=$((20000 + RANDOM % 20000))
command -v node >/dev/null || { echo "serve bench: node is needed for the load generator" >&2; exit 1; }
[ -x "$aero" ] || { echo "serve bench: build aero first ($aero)" >&2; exit 1; }

model="${1:-}"
if [ -z "$model" ]; then
  model=/tmp/aero-bench/tl-serve-Q4_0.gguf
  if [ ! -f "$model" ]; then
    mkdir -p /tmp/aero-bench
    vocab="$repo/../shared/fixtures/tokenizer/ggml-vocab-llama-spm.gguf"
    vocab_flag=()
    [ -f "$vocab" ] && vocab_flag=(--vocab "$vocab")
    "$aero" synth "$model" --arch llama --preset 1b --type Q4_0 "${vocab_flag[@]}" >/dev/null
  fi
fi
if [ "$only" != aero ]; then
  llama_bin="${LLAMA_BIN:-$(TARGETS=llama-server "$repo/bench/build_llama_cpp.sh")}"
  [ -x "$llama_bin/llama-server" ] || { echo "serve bench: no llama-server in $llama_bin" >&2; exit 1; }
fi

pid=""
stop_server() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap stop_server EXIT

wait_ready() {  # until /health answers 200 (llama-server: once the model is loaded)
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { echo "serve bench: the server exited; see $log" >&2; exit 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && return 0
    sleep 0.5
  done
  echo "serve bench: the server did not get ready; see $log" >&2
  exit 1
}

run() {  # run NAME STREAMS -> tokens/s
  local name=$1 n=$2
  trap stop_server EXIT  # (each run is a subshell: the trap above is not inherited)
  log=/tmp/aero-bench/serve-$name-$n.log
  mkdir -p /tmp/aero-bench
  if [ "$name" = aero ]; then
    "$aero" serve "$model" --port "$port" --parallel "$n" --ctx "$ctx" -t "$threads" --device "$device" >"$log" 2>&1 &
  else
    gpu=()
    [ "$device" != cpu ] && gpu=(-ngl 99)
    "$llama_bin/llama-server" -m "$model" --host 127.0.0.1 --port "$port" -np "$n" -c $((n * ctx)) -t "$threads" \
      -tb "$threads" "${gpu[@]}" >"$log" 2>&1 &
  fi
  pid=$!
  wait_ready
  node "$repo/bench/serve_load.mjs" "http://127.0.0.1:$port" 1 1 8 >/dev/null  # warm-up
  node "$repo/bench/serve_load.mjs" "http://127.0.0.1:$port" "$n" "$requests" "$tokens" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).tokens_per_second.toFixed(1)))'
  stop_server
}

echo "model: $model | device: $device | threads: $threads | $tokens tokens x $requests requests per stream"
printf "%8s %14s %20s %8s\n" streams "aero tok/s" "llama-server tok/s" ratio
for n in $streams_list; do
  a="-"; l="-"
  [ "$only" != llama ] && a=$(run aero "$n")
  [ "$only" != aero ] && l=$(run llama "$n")
  ratio=$(awk -v a="$a" -v l="$l" 'BEGIN { if (a + 0 > 0 && l + 0 > 0) printf "%.2f", a / l; else print "-" }')
  printf "%8s %14s %20s %8s\n" "$n" "$a" "$l" "$ratio"
done
