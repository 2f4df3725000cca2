#!/usr/bin/env bash
# Math reward throughput: the wst plugin through its C ABI vs Math-Verify, same items, one run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT="${REPEAT:-20}"
python3 -c 'import math_verify' 2>/dev/null || python3 -m pip install -q 'math-verify[antlr4_13_2]==0.9.0'
# The dev profile optimises dependencies and the math plugin (opt-level 3), without a second
# full release build of the workspace.
out=$(REPEAT="$REPEAT" cargo bench -q --profile dev --workspace --bench math_throughput 2>/dev/null | tail -1)
echo "$out"
items=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items_file"])')
python3 bench/mathverify_bench.py "$items" "$REPEAT"
