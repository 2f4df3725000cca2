#!/usr/bin/env bash
# One run, same machine state: wst's llama.cpp Student vs llama-cpp-python on SmolLM2-135M
# (decode tokens/s), and wst's HTTP Student vs a raw POST to llama-cpp-python's server.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/smollm2.sh
PORT=${PORT:-8766}
OMP_WAIT_POLICY=passive "$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --host 127.0.0.1 --port "$PORT" \
  --n_threads 1 --n_ctx 2048 --model_alias SmolLM2-135M-Instruct >/tmp/wst-llamapy-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break; sleep 1; done
cargo bench -p wst-tests --bench student_throughput -- "$GGUF" "http://127.0.0.1:$PORT/v1"
kill $SERVER; wait $SERVER 2>/dev/null || true
OMP_WAIT_POLICY=passive "$VENV/bin/python" bench/llamapy_throughput.py "$GGUF"
