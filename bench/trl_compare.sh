#!/usr/bin/env bash
# wst vs TRL GRPOTrainer (torch CPU) on SmolLM2-135M-Instruct, same weights, settings and
# thread count, one script: sampling 4 prompts x G=8 x <=128 tokens, one GRPO step (beta 0.04),
# full fine-tuning and LoRA (r 16 on every linear; TRL through peft). MODES=full limits it.
# Needs a Hugging Face folder of the model (MODEL_DIR; `wst demo` leaves one in wst-demo/final)
# and a Python env with trl (VENV, default /var/tmp/wst-trl: python3 -m venv && pip install trl==1.16.0 peft).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_DIR=${MODEL_DIR:?set MODEL_DIR to a Hugging Face folder of SmolLM2-135M-Instruct}
VENV=${VENV:-/var/tmp/wst-trl}
THREADS=${THREADS:-2}
MODES=${MODES:-full lora}
cargo build --profile dev --workspace --benches
for mode in $MODES; do
  echo "== wst ($mode) =="
  WST_BENCH_MODEL="$MODEL_DIR" RAYON_NUM_THREADS=$THREADS cargo bench --profile dev --workspace --bench teacher_grpo -- "$mode"
  echo "== TRL ($mode) =="
  OMP_NUM_THREADS=$THREADS "$VENV/bin/python" bench/trl_grpo.py "$MODEL_DIR" "$THREADS" "$mode"
done
