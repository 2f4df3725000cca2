#!/usr/bin/env bash
# Builds `wst` and the light reward plugins in release mode and installs them, with the shared
# libraries `wst` loads, as llama.cpp's and Ollama's releases lay theirs out:
#   PREFIX/bin/wst
#   PREFIX/lib/wst/  libllama, libggml, libggml-base, ggml's CPU variants (libggml-cpu-*.so, the best one
#                    for the CPU is chosen at run time), libwst_reward_*.so
#   scripts/install.sh [PREFIX] [cargo build flags, e.g. --features candle]   (PREFIX: ~/.local)
# `cargo install` copies the binary alone, without these libraries: use this instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${1:-$HOME/.local}
[ $# -gt 0 ] && shift
. scripts/setup.sh
cargo build --release -p wst-cli -p wst-reward-math -p wst-reward-cost -p wst-reward-format -p wst-reward-length "$@"
BUILT=${CARGO_TARGET_DIR:-target}/release
install -d "$PREFIX/bin" "$PREFIX/lib/wst"
install -m 755 "$BUILT/wst" "$PREFIX/bin/wst"
shopt -s nullglob
# The names `wst` and the variants ask for (libllama.so.0, ...), not llama.cpp's unused `common`.
libs=("$BUILT"/libllama.so.[0-9] "$BUILT"/libggml.so.[0-9] "$BUILT"/libggml-base.so.[0-9]
      "$BUILT"/libggml-cpu-*.so "$BUILT"/libwst_reward_*.so)
[ ${#libs[@]} -gt 0 ] || { echo "no shared libraries in $BUILT: was the build complete?" >&2; exit 1; }
install -m 644 "${libs[@]}" "$PREFIX/lib/wst/"
# The dynamic loader resolves every library `wst` links before this runs (the CPU variant is
# chosen when a llama.cpp Student first loads: `wst generate -v` names it).
"$PREFIX/bin/wst" -v models list > /dev/null
echo "installed $PREFIX/bin/wst and ${#libs[@]} libraries in $PREFIX/lib/wst"
