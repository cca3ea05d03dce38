#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, seeded with the shared fixtures when present.
#   fuzz/run.sh BUILD_FUZZ_DIR SECONDS
set -euo pipefail
bin=${1:?fuzz binary folder}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${AERO_SHARED:-$root/../shared}
corpus=$root/.fuzz-corpus
mkdir -p "$corpus"/{aero,safetensors,metadata,gguf,model,tokenizer,template,store,server}

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
# An Ollama manifest and a hub file list, as the stores hold them.
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:34bb5ab01051a11372a91f95f3fbbc51173eed8e7f13ec395b9ae9b8bd0e242b","size":561},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","size":2019377376},{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396","size":1429},{"mediaType":"application/vnd.ollama.image.params","digest":"sha256:56bb8bd477a519ffa694fc449c2413c6f0e1d3b1c88fa7e3c9d88d3ae49d4dcb","size":96}]}' >"$corpus/store/ollama-manifest.json"
printf '%s' '{"id":"org/tiny","sha":"0123456789abcdef0123456789abcdef01234567","siblings":[{"rfilename":"config.json","size":2,"blobId":"9e26dfeeb6e641a33dae4961196235bdb965b21b"},{"rfilename":"sub/model.safetensors","size":9,"blobId":"ffffffffffffffffffffffffffffffffffffffff","lfs":{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":9,"pointerSize":134}}]}' >"$corpus/store/hub-listing.json"
printf '%s' 'library/llama3.2:3b' >"$corpus/store/name"
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
run fuzz_model_store "$corpus/store"
run fuzz_server_request "$corpus/server"
echo "fuzz: all targets ran clean"
