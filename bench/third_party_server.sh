#!/usr/bin/env bash
# Runs the `third_party_server` test target against a real third-party OpenAI-compatible server:
# llama-cpp-python's server (PyPI) serving SmolLM2-135M-Instruct on 127.0.0.1.
# First run: ~13 CPU-minutes to compile llama-cpp-python.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/smollm2.sh
PORT=${PORT:-8765}
OMP_WAIT_POLICY=passive "$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --host 127.0.0.1 --port "$PORT" \
  --n_threads 1 --n_ctx 2048 --model_alias SmolLM2-135M-Instruct >/tmp/wst-llamapy-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break
  sleep 1
done
WST_THIRD_PARTY_BASE_URL="http://127.0.0.1:$PORT/v1" cargo test -p wst-tests --test third_party_server -- --nocapture
