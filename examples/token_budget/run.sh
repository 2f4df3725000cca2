#!/usr/bin/env bash
# The token-budget experiment (RESULTS.md, "Token cost"), resumable: each stage picks up where a
# stopped one left off (training from its last checkpoint, evaluation from the committed
# Student response cache), so it can be run again across sessions until it is done.
#   examples/token_budget/run.sh [WEIGHT ...]      default: 0.5
#   RECIPE=examples/gsm8k_token_choices.toml examples/token_budget/run.sh 0.5   (the Teacher that chooses a budget)
# Needs a built `wst` on PATH (or WST=path/to/wst). Run from the checkout's root.
set -euo pipefail
cd "$(dirname "$0")/../.."
WST=${WST:-wst}
RECIPE=${RECIPE:-examples/gsm8k_token_budget.toml}
# Outputs are named after the recipe: token-budget (free text) or token-choices.
NAME=$(basename "$RECIPE" .toml); NAME=${NAME#gsm8k_}; NAME=${NAME//_/-}
# llama.cpp's OpenMP threads spin while waiting; beside anything else they starve (FACTS.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
for W in "${@:-0.5}"; do
  OUT=wst-$NAME/w$W
  SET=(--set "reward_weights.\"cost/token_cost\"=-$W")
  if [ -d "$OUT/checkpoints" ]; then
    "$WST" train --config "$RECIPE" "${SET[@]}" --output-dir "$OUT" --no-eval --resume
  else
    "$WST" train --config "$RECIPE" "${SET[@]}" --output-dir "$OUT" --no-eval
  fi
  mkdir -p "results/$NAME/train-w$W"
  cp "$OUT"/{metrics.jsonl,completions.jsonl,config.toml} "results/$NAME/train-w$W/"
  # The evaluated Teacher's adapter (19 MB) is committed with its run: files outside the
  # repository are lost with the machine.
  cp -r "$OUT/final/adapter" "results/$NAME/train-w$W/"
  # The held-out protocol of RESULTS.md: 59 problems (two per template 0070-0099), K = 1, the
  # menu chosen on 16 training problems; every row is paired with every other by problem.
  "$WST" eval --config "$RECIPE" "${SET[@]}" --set 'data.eval.path="results/token-budget/heldout.jsonl"' \
    --num-answers 1 --cluster-by template \
    --instruction-file examples/token_budget/menu.txt --select-on 16 \
    --teacher "$OUT/final" --out "results/$NAME/eval-w$W"
  "$WST" plot --pareto "results/$NAME/eval-w$W/results.json" --x completion_tokens --minimise-x \
    --y math/accuracy --frontier-of fixed --out "results/$NAME/eval-w$W/plots"
done
