#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, seeded with the shared fixtures when present.
#   fuzz/run.sh BUILD_FUZZ_DIR SECONDS
set -euo pipefail
bin=${1:?fuzz binary folder}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${AERO_SHARED:-$root/../shared}
corpus=$root/.fuzz-corpus
mkdir -p "$corpus"/{aero,safetensors,metadata,gguf,model,tokenizer,template,server}

if [ -d "$shared/fixtures" ]; then
  cp -f "$shared"/fixtures/aero/*.aero "$shared"/fixtures/aero/small-set/*.aero "$corpus/aero/" 2>/dev/null || true
  cp -f "$shared"/fixtures/aero/*.safetensors "$corpus/safetensors/" 2>/dev/null || true
  cp -f "$shared"/fixtures/aero/quants.gguf "$shared"/fixtures/tokenizer/ggml-vocab-phi-3.gguf "$corpus/gguf/" 2>/dev/null || true
  find "$shared/fixtures/hf" -name '*.json' -exec cp -f {} "$corpus/metadata/" \; 2>/dev/null || true
  cp -f "$shared"/fixtures/tokenizer/*.inp "$corpus/tokenizer/" 2>/dev/null || true
  cp -f "$shared"/fixtures/chat-templates/*.jinja "$corpus/template/" 2>/dev/null || true
else
  echo "fuzz: no shared fixtures at $shared; starting from empty corpora"
fi
# Small GGUF models (aero's HF → GGUF of the fixtures) and configs seed the model loader.
if [ -x "$root/build/bin/aero" ] && [ -d "$shared/fixtures/hf" ]; then
  for m in "$shared"/fixtures/hf/*/; do
    name=$(basename "$m")
    "$root/build/bin/aero" quantize "$m" "$corpus/model/$name-q4_0.gguf" Q4_0 2>/dev/null || true
    cp -f "$m/config.json" "$corpus/model/$name-config.json" 2>/dev/null || true
  done
fi
# A file aero itself writes (with every optional chunk) seeds the reader too.
if [ -x "$root/build/bin/aero" ] && [ -f "$shared/fixtures/aero/small.safetensors" ]; then
  "$root/build/bin/aero" convert "$shared/fixtures/aero/small.safetensors" "$corpus/aero/aero-written.aero" \
    --integrity --tensor-hash --max-shard-bytes 2048 --page-size 512 2>/dev/null || true
fi

# Request bodies of every endpoint seed the server's parser (the first byte picks the endpoint).
printf '\x00{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.5,"stop":["x"],"logprobs":true,"top_logprobs":2}' >"$corpus/server/chat.json"
printf '\x01{"model":"m","prompt":[1,2,3],"max_tokens":4,"logprobs":2,"seed":5}' >"$corpus/server/completion.json"
printf '\x02{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s"}]}],"options":{"num_predict":3,"stop":["a"]}}' >"$corpus/server/ollama-chat.json"
printf '\x03{"model":"m","prompt":"p","system":"s","raw":false,"stream":false}' >"$corpus/server/ollama-generate.json"

run() {
  local target=$1 dir=$2 log rc=0
  log=$(mktemp)
  echo "fuzz: $target for ${seconds}s"
  # -rss_limit_mb and -timeout turn memory blow-ups and hangs into findings.
  ASAN_OPTIONS=detect_leaks=1 "$bin/$target" "$dir" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$root/.fuzz-corpus/$target-" >"$log" 2>&1 || rc=$?
  grep -E "^stat::number_of_executed_units|^SUMMARY" "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz: $target failed (exit $rc); the input is saved under .fuzz-corpus/"
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
run fuzz_aero_reader "$corpus/aero"
run fuzz_safetensors_reader "$corpus/safetensors"
run fuzz_metadata "$corpus/metadata"
run fuzz_gguf_reader "$corpus/gguf"
run fuzz_model_load "$corpus/model"
run fuzz_tokenizer "$corpus/tokenizer"
run fuzz_chat_template "$corpus/template"
run fuzz_server_request "$corpus/server"
echo "fuzz: all targets ran clean"
