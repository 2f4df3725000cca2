#!/usr/bin/env bash
# Runs the `third_party_server` test target against a real third-party OpenAI-compatible server:
# llama-cpp-python's server (PyPI) serving SmolLM2-135M-Instruct on 127.0.0.1.
# First run: ~13 CPU-minutes to compile llama-cpp-python.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/smollm2.sh
PORT=${PORT:-8765}
start_server "$PORT"
WST_THIRD_PARTY_BASE_URL="http://127.0.0.1:$PORT/v1" cargo test --workspace --test third_party_server -- --nocapture
