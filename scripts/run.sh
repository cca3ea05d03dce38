#!/usr/bin/env bash
# Sets up aero and runs its main job on MODEL (default: a fixture HF folder):
# convert to .aero with integrity data, describe the result, and verify every byte.
# (The default is a tiny random-weight Llama from the shared fixtures.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
model=${1:-../shared/fixtures/hf/llama}
[ -e "$model" ] || { echo "run: $model not found; pass a model path" >&2; exit 1; }
out=${OUT_DIR:-$(mktemp -d)}/model.aero
build/bin/aero convert "$model" "$out" --integrity --tensor-hash
build/bin/aero info "$out"
build/bin/aero validate --full "$out"
