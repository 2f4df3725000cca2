#!/usr/bin/env bash
# One run, same machine state: wst's llama.cpp Student on ggml's AVX2 CPU variant
# (WST_GGML_CPU=haswell) against the variant chosen for this CPU (AVX-512 with VNNI where the CPU
# has it; never AMX), alternating A B A B per model: continuous batching (max_sequences 16) and
# one request at a time (max_sequences 4), 2 threads, answers of 128 tokens. Both sides are the
# same build: ggml's CPU backend is a run-time choice (wst_llamacpp::cpu_variant). Until
# 2026-12-07 this compared two builds (GGML_AVX512=ON ... in a second target dir); that run's
# log is results/bench-avx512.log. Nothing else should run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${CARGO_TARGET_DIR:-target}
bench_bin() { ls -t "$1"/debug/deps/student_throughput-* | grep -v '\.d$' | head -1; }
cargo bench -q --profile dev --workspace --bench student_throughput --no-run
BIN=$(bench_bin "$BASE")
WST="$BASE/debug/wst"
[ -x "$WST" ] || cargo test -q --workspace --no-run
for NAME in ${MODELS:-qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct}; do
  "$WST" models fetch "$NAME" >/dev/null
  M=$("$WST" models path "$NAME")
  for FILTER in "continuous batching (max_sequences 16)" "one request at a time"; do
    for round in 1 2; do
      for variant in haswell best; do
        echo "== $NAME $variant round $round"
        if [ $variant = best ]; then
          env -u WST_GGML_CPU WST_BENCH_FILTER="$FILTER" "$BIN" --bench "$M" 2>/dev/null | grep tok/s
        else
          WST_GGML_CPU=$variant WST_BENCH_FILTER="$FILTER" "$BIN" --bench "$M" 2>/dev/null | grep tok/s
        fi
      done
    done
  done
done
