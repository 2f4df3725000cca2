#!/usr/bin/env bash
# Issue 27, goal 2, in one run: the llama.cpp Student served alone by `wst serve --no-teacher`
# (2 threads, continuous batching), 1, 4 and 16 concurrent answers of 128 tokens
# (bench/llamapy_server_throughput.py), on both Qwen Students, from
#   static-avx2    WST_STATIC: the binary as built before ggml's CPU variants (GGML_NATIVE=OFF,
#                  which gives ggml AVX2 kernels only)
#   static-avx512  WST_WIDE: the special build (GGML_AVX512, _VNNI, _VBMI, AVX_VNNI), which dies
#                  with SIGILL on CPUs without AVX-512
#   variants       WST_NEW: this build, ggml's CPU variants with the best one chosen at run time
#   variants-avx2  WST_NEW with WST_GGML_CPU=haswell (the AVX2 variant, forced)
# in turn, every other round in reverse order, ROUNDS rounds (default 2). Nothing else should run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8791}
ROUNDS=${ROUNDS:-2}
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$TMP"' EXIT
SERVER=
serve() { # serve LABEL BINARY MODEL [ENV...]
  local label=$1 bin=$2 model=$3; shift 3
  printf '[student]\nspec = "llamacpp:%s"\n[student.llamacpp]\nn_threads = 2\n' "$model" > "$TMP/serve.toml"
  env OMP_WAIT_POLICY=passive "$@" "$bin" -v serve --no-teacher -c "$TMP/serve.toml" --port "$PORT" > "$TMP/$label.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/v1/models" > "$TMP/models.json" 2>/dev/null && break; sleep 1; done
  grep -h "CPU backend" "$TMP/$label.log" | sed 's/.*CPU backend: /  ggml CPU backend: /' || true
  MODEL=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][0]["id"])' "$TMP/models.json") \
    LABEL="$label" "$PY" bench/llamapy_server_throughput.py "http://127.0.0.1:$PORT/v1" 1 4 16
  kill $SERVER; wait $SERVER 2>/dev/null || true
}
lscpu | grep 'Model name'
for NAME in ${MODELS:-qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct}; do
  M=$("$WST_NEW" models path "$NAME")
  for round in $(seq "$ROUNDS"); do
    echo "== $NAME round $round"
    order="static-avx2 static-avx512 variants variants-avx2"
    # Even rounds in reverse, so a drift of the machine's speed does not favour one side.
    [ $((round % 2)) = 0 ] && order="variants-avx2 variants static-avx512 static-avx2"
    for build in $order; do
      case $build in
        static-avx2) serve $build "$WST_STATIC" "$M" ;;
        static-avx512) serve $build "$WST_WIDE" "$M" ;;
        variants) serve $build "$WST_NEW" "$M" ;;
        variants-avx2) serve $build "$WST_NEW" "$M" WST_GGML_CPU=haswell ;;
      esac
    done
  done
done
