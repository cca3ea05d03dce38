#!/usr/bin/env bash
# Sets up aero and runs its main job: generation on MODEL, with prompt and generation speed.
# With no MODEL, on a random-weight TinyLlama-1.1B-shaped Q4_0 model made by `aero synth`
# (no download needed). MODEL: .aero, AEROSET, GGUF, safetensors, HF folder, hf:ORG/NAME or
# ollama:NAME (aero says in one line when it finds none). On the GPU when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
work=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$work"
model=${1:-}
if [ -z "$model" ]; then
  model="$work/tinyllama-shape-q4_0.gguf"
  vocab=../shared/fixtures/tokenizer/ggml-vocab-llama-spm.gguf
  vocab_flag=()
  [ -f "$vocab" ] && vocab_flag=(--vocab "$vocab")
  build/bin/aero synth "$model" --arch llama --preset 1b --type Q4_0 "${vocab_flag[@]}"
fi
build/bin/aero-run "$model" --info
if build/bin/aero tokenize "$model" "x" >/dev/null 2>&1; then
  echo "generating 64 tokens after the prompt 'The quick brown fox' (random weights give random words):"
  build/bin/aero run "$model" -p "The quick brown fox" -n 64 --seed 1 --ignore-eos
else
  echo "the model carries no tokenizer: generating 64 token ids from the prompt ids 1,450,4996,17354:"
  build/bin/aero run "$model" --ids 1,450,4996,17354 -n 64 --seed 1 --print-ids --ignore-eos
fi
build/bin/aero bench "$model" -p 64 -n 32 -r 2
