#!/usr/bin/env bash
# The token-budget experiment (RESULTS.md, "Token cost"), resumable: each stage picks up where a
# stopped one left off (training from its last checkpoint, evaluation from the committed
# Student response cache), so it can be run again across sessions until it is done.
#   examples/token_budget/run.sh [WEIGHT ...]      default: 0.5
# Needs a built `wst` on PATH (or WST=path/to/wst). Run from the checkout's root.
set -euo pipefail
cd "$(dirname "$0")/../.."
WST=${WST:-wst}
RECIPE=examples/gsm8k_token_budget.toml
# llama.cpp's OpenMP threads spin while waiting; beside anything else they starve (FACTS.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
for W in "${@:-0.5}"; do
  OUT=wst-token-budget/w$W
  SET=(--set "reward_weights.\"cost/token_cost\"=-$W")
  if [ -d "$OUT/checkpoints" ]; then
    "$WST" train --config "$RECIPE" "${SET[@]}" --output-dir "$OUT" --no-eval --resume
  else
    "$WST" train --config "$RECIPE" "${SET[@]}" --output-dir "$OUT" --no-eval
  fi
  mkdir -p "results/token-budget/train-w$W"
  cp "$OUT"/{metrics.jsonl,completions.jsonl,config.toml} "results/token-budget/train-w$W/"
  "$WST" eval --config "$RECIPE" "${SET[@]}" --num-answers 4 --limit 100 --cluster-by template \
    --instruction-file examples/token_budget/menu.txt --select-on 30 \
    --teacher "$OUT/final" --out "results/token-budget/eval-w$W"
  "$WST" plot --pareto "results/token-budget/eval-w$W/results.json" --x completion_tokens --minimise-x \
    --y math/accuracy --frontier-of fixed --out "results/token-budget/eval-w$W/plots"
done
