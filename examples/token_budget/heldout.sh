#!/usr/bin/env bash
# The token-cost issue's held-out protocol for the shipped token-budget Teacher: 117 problems
# (the GSM8K original and three fresh variants of each template 0070-0099; template 0098 has
# one: results/token-budget/heldout-117.jsonl), K = 4 answers per problem, the same problems
# and Student seeds for every row, intervals by problem and by template.
#   examples/token_budget/heldout.sh teachers   direct, the untrained and the trained Teacher
#   examples/token_budget/heldout.sh best       the weak-to-strong test first: the menu's best on
#                                               training problems alone, beside direct and both Teachers
#   examples/token_budget/heldout.sh router     the 0.5B router Teacher (examples/gsm8k_token_router.toml,
#                                               trained into wst-token-router/w0.5), the same rows
#   examples/token_budget/heldout.sh writer     the Student writing its own budget (--writer, its reply
#                                               primed with TALE's sentence as the Teacher's is), beside
#                                               direct and the best fixed instruction; the Teachers' rows
#                                               are paired with it from their folders (pair.py)
#   examples/token_budget/heldout.sh all        every row: + CoT few-shot and the whole menu,
#                                               its best chosen on 16 training problems at K = 4
# Resumable: every Student answer lands in the committed response cache
# (results/token-budget/cache) as it comes, so a stopped run repeats no paid answer; the
# Teacher's instructions are sampled with keyed seeds, so a re-run asks the same questions.
# Needs a built `wst` on PATH (or WST=path/to/wst). Run from the checkout's root.
set -euo pipefail
cd "$(dirname "$0")/../.."
WST=${WST:-wst}
# llama.cpp's OpenMP threads spin while waiting; beside anything else they starve (FACTS.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
TEACHER=examples/teachers/gsm8k-token-budget
HELDOUT=(--set 'data.eval.path="results/token-budget/heldout-117.jsonl"' --num-answers 4 --cluster-by template)
COMMON=(--config "$TEACHER/config.toml" "${HELDOUT[@]}" --teacher "$TEACHER")
# The menu's best on training problems alone, re-chosen from the cache (no CoT few-shot row).
BEST=(--few-shot 0 --instruction-file examples/token_budget/menu-brief.txt --select-on 16)
case "${1:-all}" in
  teachers)
    OUT=results/token-budget/eval-heldout117-teachers
    "$WST" eval "${COMMON[@]}" --few-shot 0 --out "$OUT" ;;
  best)
    OUT=results/token-budget/eval-heldout117-brief
    "$WST" eval "${COMMON[@]}" "${BEST[@]}" --out "$OUT" ;;
  router)
    ROUTER=${ROUTER:-wst-token-router/w0.5/final}
    "$WST" eval --config examples/gsm8k_token_router.toml "${HELDOUT[@]}" --teacher "$ROUTER" "${BEST[@]}" \
      --out results/token-router/eval-heldout117 ;;
  writer)
    OUT=results/token-budget/eval-heldout117-writer
    # No Teacher rows: they need the build that sampled the Teachers' instructions (any later
    # build samples other last bits, so other instructions, and pays the Student again).
    "$WST" eval --config "$TEACHER/config.toml" "${HELDOUT[@]}" "${BEST[@]}" --no-untrained \
      --writer llamacpp:qwen2.5-coder-1.5b-instruct --out "$OUT" ;;
  all)
    OUT=results/token-budget/eval-heldout117
    "$WST" eval "${COMMON[@]}" --instruction-file examples/token_budget/menu.txt --select-on 16 --out "$OUT"
    "$WST" plot --pareto "$OUT/results.json" --x completion_tokens --minimise-x \
      --y math/accuracy --frontier-of fixed --out "$OUT/plots" ;;
  *) echo "usage: $0 [teachers|best|router|writer|all]" >&2; exit 2 ;;
esac
