#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages first (scripts/setup.sh), then
# clippy with warnings as errors, then `cargo test --workspace`. The first build compiles
# candle and llama.cpp: ~20 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo clippy --workspace --all-targets -- -D warnings
# The `wst` command with the candle Student, which its default build leaves out.
cargo clippy --workspace --all-targets --features wst-cli/candle -- -D warnings
cargo test --workspace "$@"
