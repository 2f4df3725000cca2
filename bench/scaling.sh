#!/usr/bin/env bash
# Goal 5 of the performance issue: one GRPO step's time and peak memory against completion
# length (64, 128, 256, 512 tokens at G = 8) and against G (4, 8, 16 at 128 tokens), for wst and
# TRL's GRPOTrainer, one prompt, full fine-tuning, β = 0 (TRL's default), every completion made
# exactly as long as asked on both sides. One process per point (peak RSS is per process), wst
# and TRL alternating, so a drift of the machine's speed hits both alike. Appends JSON lines to
# OUT (default results/bench-scaling.jsonl); bench/scaling_plot.py turns them into the table and
# plots. Needs MODEL_DIR (a Hugging Face folder of SmolLM2-135M-Instruct) and the TRL env
# of bench/trl_compare.sh (VENV). MODES=lora runs LoRA instead.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_DIR=${MODEL_DIR:?set MODEL_DIR to a Hugging Face folder of SmolLM2-135M-Instruct}
VENV=${VENV:-/var/tmp/wst-trl}
THREADS=${THREADS:-2}
MODE=${MODE:-full}
OUT=${OUT:-results/bench-scaling.jsonl}
POINTS=${POINTS:-"64x8 128x8 256x8 512x8 128x4 128x16"}
cargo build --profile dev -p wst-tests --bench teacher_grpo
echo "# $(date -u +%FT%TZ) $(lscpu | grep 'Model name' | sed 's/  */ /g') mode=$MODE threads=$THREADS" >&2
for point in $POINTS; do
  tokens=${point%x*}
  g=${point#*x}
  echo "== $tokens tokens, G = $g ==" >&2
  WST_BENCH_MODEL="$MODEL_DIR" WST_BENCH_PROMPTS=1 WST_BENCH_G=$g WST_BENCH_TOKENS=$tokens WST_BENCH_EXACT=1 WST_BENCH_BETA=0 \
    RAYON_NUM_THREADS=$THREADS cargo bench -q --profile dev -p wst-tests --bench teacher_grpo -- "$MODE" | tail -1 | tee -a "$OUT"
  TRL_PROMPTS=1 TRL_G=$g TRL_TOKENS=$tokens TRL_EXACT=1 TRL_BETA=0 OMP_NUM_THREADS=$THREADS \
    "$VENV/bin/python" bench/trl_grpo.py "$MODEL_DIR" "$THREADS" "$MODE" 2>/dev/null | tail -1 | tee -a "$OUT"
done
