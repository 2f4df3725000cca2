#!/usr/bin/env bash
# One run, same machine state: wst's llama.cpp Student vs llama-cpp-python on SmolLM2-135M
# (decode tokens/s), and wst's HTTP Student vs a raw POST to llama-cpp-python's server.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/smollm2.sh
PORT=${PORT:-8766}
start_server "$PORT"
cargo bench --profile dev --workspace --bench student_throughput -- "$GGUF" "http://127.0.0.1:$PORT/v1"
kill $SERVER; wait $SERVER 2>/dev/null || true
OMP_WAIT_POLICY=passive "$VENV/bin/python" bench/llamapy_throughput.py "$GGUF"
