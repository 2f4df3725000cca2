#!/usr/bin/env bash
# One run, same machine state: wst's llama.cpp Student (one request at a time, and continuous
# batching) against llama-cpp-python's server, 1/4/16 concurrent answers of 128 tokens, 2 threads
# each, on Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct (Q4_K_M, from the model catalog).
# Nothing else should run on the machine meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/smollm2.sh
PORT=${PORT:-8767}
# The test build (warm wherever the tests ran) includes the wst binary.
cargo test -q --workspace --no-run
WST="${CARGO_TARGET_DIR:-target}/debug/wst"
for NAME in ${MODELS:-qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct}; do
  "$WST" models fetch "$NAME" >/dev/null
  MODEL=$("$WST" models path "$NAME")
  echo "== $NAME ($MODEL)"
  cargo bench -q --profile dev --workspace --bench student_throughput -- "$MODEL"
  start_server "$PORT" "$MODEL" 2
  "$VENV/bin/python" bench/llamapy_server_throughput.py "http://127.0.0.1:$PORT/v1" 1 4 16
  kill $SERVER; wait $SERVER 2>/dev/null || true
done
