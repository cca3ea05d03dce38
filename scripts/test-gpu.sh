#!/usr/bin/env bash
# On the GPU machine, from the bundle scripts/gpu-bundle.sh made (nothing is built there):
#   1. the GPU: nvidia-smi, aero info --devices
#   2. the CUDA tests: cuda_backend_test (operations against the CPU backend; the fixture
#      models through a Session against transformers) and the CLI's --device tests
#   3. aero bench --device cuda on random-weight models of TinyLlama 1.1B and Llama 3 8B shape
#      (aero synth F16, then aero quantize Q8_0, Q4_0, Q4_K_M)
# and a short table last. Each step goes on past a failure; the exit status is 1 when a test
# failed. Logs go to $WORK_DIR (and to $OUT/test-gpu when $OUT is set).
#
# Environment: BUNDLE (default: .gpu-bundle beside scripts/, or the bundle this copy lies in),
# WORK_DIR (default /tmp/aero-gpu: models, logs), PRESETS (default "1b 8b"), TYPES (default
# "F16 Q8_0 Q4_0 Q4_K_M"), PP/TG/REPS (bench: default 512/128/2), SKIP_TESTS=1, SKIP_MATMUL_BENCH=1, SKIP_BENCH=1,
# SKIP_RESIDENT=1 (only the streamed benchmarks),
# DEADLINE (seconds after which no new model is made or benchmarked: default 470), DEVICE
# (what the smoke test and the benchmarks run on: default cuda; cpu for a comparison), PEER_SRC
# (llama.cpp's source, an archive or git bundle: when set, its CUDA llama-bench is built at the
# start, in the background, and run on every model aero benchmarks, right after aero, same -p/-n/-r,
# -fa 1 -ngl 99; the table gains its figures and the ratios), GPU_MEM (e.g. 4GiB: the STREAM_PRESET
# (8b) models of STREAM_TYPES (F16 Q4_K_M) are benchmarked again with --gpu-mem, layers streamed,
# STREAM_TG tokens (16) and batch mode with STREAM_BATCH sequences (32), beside llama.cpp with
# -ngl PEER_NGL (16)).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${BUNDLE:-}" ]; then bundle=$BUNDLE
elif [ -x "$here/bin/aero" ]; then bundle=$here
else bundle=$here/.gpu-bundle; fi
[ -x "$bundle/bin/aero" ] || { echo "test-gpu: no bundle at $bundle (run scripts/gpu-bundle.sh on the build machine)" >&2; exit 1; }
work=${WORK_DIR:-/tmp/aero-gpu}
mkdir -p "$work"
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
aero=$bundle/bin/aero
deadline=${DEADLINE:-470}
device=${DEVICE:-cuda}
start=$SECONDS
summary=()
status=0

section() { printf '\n== %s (at %ds)\n' "$1" $((SECONDS - start)); }
# (One archive: the device tool brings back at most 8 files.)
save_logs() { if [ -n "${OUT:-}" ]; then (cd "$work" && tar czf "$OUT/test-gpu-logs.tgz" ./*.log 2>/dev/null); fi; }
first_error() { grep -m1 -E 'error|Error|what\(\)' "$1" | cut -c1-160; }

peer_bin=
if [ -n "${PEER_SRC:-}" ]; then
  # 16 cores build llama-bench in ~4 min while the tests run on the GPU.
  ( LLAMA_SRC=$PEER_SRC CUDA=1 "$here/bench/build_llama_cpp.sh" "$work/peer" >"$work/peer-build.out" 2>&1 ) &
  peer_build=$!
fi

section "GPU"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used,compute_cap --format=csv
else
  echo "no nvidia-smi on this machine"
fi
if ! "$aero" --version; then
  echo "test-gpu: $aero does not start (a library missing? ldd below)" >&2
  ldd "$aero" | grep -i 'not found' >&2
  exit 1
fi
"$aero" info --devices | tee "$work/devices.log"
summary+=("devices: $(head -1 "$work/devices.log")")

# gtest binary, its log name, arguments: one summary line with passed/failed/skipped counts.
run_tests() {
  local name=$1 log=$work/$1.log
  shift
  timeout 400 "$@" >"$log" 2>&1
  local rc=$?
  local passed failed skipped
  passed=$(grep -oP '^\[  PASSED  \] \K[0-9]+' "$log" | tail -1)
  failed=$(grep -oP '^\[  FAILED  \] \K[0-9]+(?= tests?, listed)' "$log" | tail -1)
  skipped=$(grep -oP '^\[  SKIPPED \] \K[0-9]+(?= tests?,)' "$log" | tail -1)
  # What failed and where (a few lines each), an exception's text, and each reason for skipping once.
  grep -A6 ': Failure$' "$log" | head -80
  grep -E 'exception with description|^\[  FAILED  \] [A-Za-z]' "$log" | sort -u | head -40
  grep -A1 ': Skipped$' "$log" | grep -v -e ': Skipped$' -e '^--$' | sort | uniq -c | sed 's/^ */skipped: /'
  [ $rc -eq 124 ] && echo "$name: timed out"
  summary+=("$name: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped (exit $rc)")
  [ $rc -eq 0 ] || status=1
}

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  section "CUDA backend tests"
  AERO_SHARED="$bundle/shared" run_tests cuda_backend_test "$bundle/tests/cuda_backend_test"
  section "CUDA product tests"
  run_tests cuda_matmul_test "$bundle/tests/cuda_matmul_test"
  section "CLI tests (--device)"
  AERO_BIN_DIR="$bundle/bin" AERO_SHARED="$bundle/shared" run_tests cli_test "$bundle/tests/cli_test" \
    --gtest_filter='CudaCli.*:RunCli.AeroRunTakesThePythonToolsFlags:RunCli.GreedyIdsReproduceTransformers'
fi

if [ "${SKIP_MATMUL_BENCH:-0}" != 1 ]; then
  section "product kernels on 8B shapes"
  timeout 120 "$bundle/bin/aero-cuda-matmul-bench" 2>&1 | tee "$work/matmul-bench.log"
fi

# peer_figures LOG: llama-bench's pp and tg t/s ("?" where absent), on one line.
peer_figures() {
  local pp tg
  pp=$(awk -F'|' 'NF > 3 && $(NF-2) ~ / pp[0-9]/ { split($(NF-1), a, "±"); gsub(/ /, "", a[1]); print a[1] }' "$1")
  tg=$(awk -F'|' 'NF > 3 && $(NF-2) ~ / tg[0-9]/ { split($(NF-1), a, "±"); gsub(/ /, "", a[1]); print a[1] }' "$1")
  echo "${pp:-?} ${tg:-?}"
}

rows=()
# bench MODEL LABEL: one table row from aero bench's pp and tg lines.
bench() {
  local model=$1 label=$2 log=$work/bench-${2// /-}.log
  if [ $((SECONDS - start)) -gt "$deadline" ]; then rows+=("| $label | skipped: past ${deadline}s | | | |"); return; fi
  timeout 150 "$aero" bench "$model" --device "$device" -p "${PP:-512}" -n "${TG:-128}" -r "${REPS:-2}" >"$log" 2>&1
  local rc=$?
  cat "$log"
  if [ $rc -ne 0 ]; then rows+=("| $label | failed: $(first_error "$log") | | | |"); return; fi
  local pp tg gbs size
  pp=$(awk -F'|' '$2 ~ /^ pp/ { gsub(/ /, "", $3); print $3 }' "$log")
  tg=$(awk -F'|' '$2 ~ /^ tg/ { gsub(/ /, "", $3); print $3 }' "$log")
  gbs=$(awk -F'|' '$2 ~ /^ tg/ { gsub(/ /, "", $6); print $6 }' "$log")
  size=$(grep -oP 'params, \K[^)]+' "$log" | head -1)
  local row="| $label | $size | $pp | $tg | $gbs |"
  if [ -n "${peer_build:-}" ]; then
    wait_for_peer
    if [ "$peer_bin" != none ]; then
      local plog=$work/peer-${2// /-}.log
      timeout 150 "$peer_bin/llama-bench" -m "$model" -p "${PP:-512}" -n "${TG:-128}" -r "${REPS:-2}" -fa 1 -ngl 99 >"$plog" 2>&1
      grep -E '^\| ' "$plog" || tail -3 "$plog"
      local ppp tgp
      read -r ppp tgp < <(peer_figures "$plog")
      row+=" ${ppp:-?} | ${tgp:-?} | $(ratio "$pp" "$ppp") | $(ratio "$tg" "$tgp") |"
    fi
  fi
  rows+=("$row")
}
# stream_bench MODEL LABEL: the model with --gpu-mem $GPU_MEM (layers streamed to the GPU),
# and llama.cpp with -ngl $PEER_NGL_<type> or $PEER_NGL (layers kept on the GPU, the rest computed
# on the CPU: choose it so that llama.cpp uses no more GPU memory) on the same file: pp, tg and
# (aero) batch-mode tg.
stream_rows=()
stream_bench() {
  local model=$1 label=$2 log=$work/stream-${2// /-}.log
  local ngl_var="PEER_NGL_${2##* }"
  local ngl=${!ngl_var:-${PEER_NGL:-16}}
  # The CPU computes some layers here: not while llama.cpp compiles on every core (that halved
  # the CPU's share once).
  wait_for_peer
  if [ $((SECONDS - start)) -gt "$deadline" ]; then stream_rows+=("| $label | skipped: past ${deadline}s |"); return; fi
  timeout 240 "$aero" bench "$model" --device "$device" --gpu-mem "$GPU_MEM" -p "${PP:-512}" -n "${STREAM_TG:-16}" -r 1 \
    -b "${STREAM_BATCH:-32}" >"$log" 2>&1
  local rc=$?
  cat "$log"
  if [ $rc -ne 0 ]; then stream_rows+=("| $label | failed: $(first_error "$log") |"); return; fi
  local pp tg tgb
  pp=$(awk -F'|' '$2 ~ /^ pp/ { gsub(/ /, "", $3); print $3 }' "$log")
  tg=$(awk -F'|' '$2 ~ /^ tg[0-9]+ $/ { gsub(/ /, "", $3); print $3 }' "$log")
  tgb=$(awk -F'|' '$2 ~ / b[0-9]+ $/ { gsub(/ /, "", $3); print $3 }' "$log")
  local row="| $label | $GPU_MEM | $pp | $tg | $tgb |"
  if [ -n "$peer_bin" ] && [ "$peer_bin" != none ]; then
    local plog=$work/peer-stream-${2// /-}.log
    timeout 240 "$peer_bin/llama-bench" -m "$model" -p "${PP:-512}" -n "${STREAM_TG:-16}" -r 1 -fa 1 -ngl "$ngl" >"$plog" 2>&1
    grep -E '^\| ' "$plog" || tail -3 "$plog"
    local ppp tgp
    read -r ppp tgp < <(peer_figures "$plog")
    row+=" ngl $ngl: ${ppp:-?} | ${tgp:-?} | $(ratio "$pp" "$ppp") | $(ratio "$tg" "$tgp") |"
  fi
  stream_rows+=("$row")
}
# wait_for_peer: sets peer_bin to llama.cpp's build folder once its build is done ("none": failed).
wait_for_peer() {
  if [ -n "${peer_build:-}" ] && [ -z "$peer_bin" ]; then
    if wait "$peer_build"; then peer_bin=$(tail -1 "$work/peer-build.out"); else peer_bin=none; tail -5 "$work/peer-build.out"; fi
  fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "?" }'; }

# make PRESET TYPE: the model file, synthesized (F16) or quantized from the preset's F16.
make_model() {
  local preset=$1 type=$2 f16=$work/llama-$1-F16.gguf out=$work/llama-$1-$2.gguf
  [ -s "$out" ] && { echo "$out"; return; }
  if [ "$type" = F16 ]; then
    # With a real vocabulary of the preset's size (llama.cpp refuses a model without one).
    local vocab=$bundle/shared/fixtures/tokenizer/ggml-vocab-llama-spm.gguf
    [ "$preset" = 8b ] && vocab=$bundle/shared/fixtures/tokenizer/ggml-vocab-llama-bpe.gguf
    local with=()
    [ -f "$vocab" ] && with=(--vocab "$vocab")
    "$aero" synth "$out" --arch llama --preset "$preset" --type F16 "${with[@]}" >"$work/synth-$preset.log" 2>&1  # (written atomically)
  else
    "$aero" quantize "$f16" "$out" "$type" >"$work/quantize-$preset-$type.log" 2>&1
  fi
  [ -s "$out" ] && echo "$out"
}

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  section "smoke test: a tiny model on $device"
  tiny=$work/tiny.gguf
  "$aero" synth "$tiny" --arch llama --preset tiny --type F16 >/dev/null 2>&1
  if "$aero" run "$tiny" --ids 1,2,3 -n 8 --greedy --print-ids --ignore-eos --device "$device" 2>"$work/smoke.log"; then
    cat "$work/smoke.log"
    read -r -a presets <<<"${PRESETS:-1b 8b}"
    read -r -a types <<<"${TYPES:-F16 Q8_0 Q4_0 Q4_K_M}"
    section "benchmarks (models in $work)"
    # The largest F16 file is written by one thread: start it first, behind the smaller presets.
    last=${presets[${#presets[@]}-1]}
    [ ${#presets[@]} -gt 1 ] && { make_model "$last" F16 >/dev/null & big=$!; }
    for preset in "${presets[@]}"; do
      if [ "$preset" = "$last" ] && [ -n "${big:-}" ]; then
        # Past the deadline nothing more is benchmarked: don't wait for the file either.
        if [ $((SECONDS - start)) -gt "$deadline" ]; then pkill -P "$big" 2>/dev/null; kill "$big" 2>/dev/null; fi
        wait "$big" 2>/dev/null
      fi
      for type in "${types[@]}"; do
        if [ $((SECONDS - start)) -gt "$deadline" ]; then rows+=("| $preset $type | skipped: past ${deadline}s | | | |"); continue; fi
        [ "$type" != F16 ] && ! make_model "$preset" F16 >/dev/null && { rows+=("| $preset $type | synth failed: $(first_error "$work/synth-$preset.log") | | | |"); continue; }
        if model=$(make_model "$preset" "$type"); then
          [ "${SKIP_RESIDENT:-0}" != 1 ] && bench "$model" "$preset $type"
          if [ -n "${GPU_MEM:-}" ] && [ "$preset" = "${STREAM_PRESET:-8b}" ] && [[ " ${STREAM_TYPES:-F16 Q4_K_M} " == *" $type "* ]]; then
            stream_bench "$model" "$preset $type"
          fi
          [ "$type" != F16 ] && [ -z "${KEEP_MODELS:-}" ] && rm -f "$model"  # disk: the 8B files add up to 34 GiB
        else
          rows+=("| $preset $type | making the model failed | | | |")
        fi
      done
      [ -z "${KEEP_MODELS:-}" ] && rm -f "$work/llama-$preset-F16.gguf"
    done
  else
    echo "the CUDA backend cannot run a model yet: $(tail -1 "$work/smoke.log")"
    rows+=("| all | skipped: the smoke test failed: $(tail -1 "$work/smoke.log" | cut -c1-140) | | | |")
  fi
fi

save_logs
section "summary"
printf '%s\n' "${summary[@]}"
if [ ${#rows[@]} -gt 0 ]; then
  printf '\n| model | size | pp%s t/s | tg%s t/s | tg GB/s of weights |' "${PP:-512}" "${TG:-128}"
  [ -n "${peer_build:-}" ] && printf ' llama.cpp pp | llama.cpp tg | pp ratio | tg ratio |'
  printf '\n|---|---|---|---|---|'
  [ -n "${peer_build:-}" ] && printf '%s' '---|---|---|---|'
  printf '\n'

  printf '%s\n' "${rows[@]}"
fi
if [ ${#stream_rows[@]} -gt 0 ]; then
  printf '\n| streamed model | --gpu-mem | pp%s t/s | tg t/s | tg t/s, batch %s | llama.cpp pp | llama.cpp tg | pp ratio | tg ratio |\n' \
    "${PP:-512}" "${STREAM_BATCH:-32}"
  printf '|---|---|---|---|---|---|---|---|---|\n'
  printf '%s\n' "${stream_rows[@]}"
fi
printf '\ntotal %ds\n' $((SECONDS - start))
exit $status
