#!/usr/bin/env bash
# One run, same machine state: wst's llama.cpp Student as CI builds it (GGML_NATIVE=OFF, which
# gives ggml AVX2 only) against the same code built with AVX-512 (GGML_AVX512, _VNNI, _VBMI and
# AVX_VNNI; never AMX, which faults on these machines), alternating A B A B per model:
# continuous batching (max_sequences 16) and one request at a time (max_sequences 4), 2 threads,
# answers of 128 tokens. The AVX-512 build needs its own target dir: llama-cpp-sys-2 reads
# GGML_* variables only when its build script runs, so an existing build ignores new ones
# (or run `cargo clean -p llama-cpp-sys-2` there first). Nothing else should run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${CARGO_TARGET_DIR:-target}
WIDE=${AVX512_TARGET_DIR:-target-avx512}
bench_bin() { ls -t "$1"/debug/deps/student_throughput-* | grep -v '\.d$' | head -1; }
cargo bench -q --profile dev --workspace --bench student_throughput --no-run
GGML_AVX512=ON GGML_AVX512_VNNI=ON GGML_AVX512_VBMI=ON GGML_AVX_VNNI=ON CARGO_TARGET_DIR="$WIDE" \
  cargo bench -q --profile dev --workspace --bench student_throughput --no-run
A=$(bench_bin "$BASE")
B=$(bench_bin "$WIDE")
WST="$BASE/debug/wst"
[ -x "$WST" ] || cargo test -q --workspace --no-run
for NAME in ${MODELS:-qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct}; do
  "$WST" models fetch "$NAME" >/dev/null
  M=$("$WST" models path "$NAME")
  for FILTER in "continuous batching (max_sequences 16)" "one request at a time"; do
    for round in 1 2; do
      for build in avx2 avx512; do
        bin=$A; [ $build = avx512 ] && bin=$B
        echo "== $NAME $build round $round"
        WST_BENCH_FILTER="$FILTER" "$bin" --bench "$M" 2>/dev/null | grep tok/s
      done
    done
  done
done
