set -x
cd /var/tmp/exp
export WST_MODEL_CACHE=/var/tmp/wst-models
while pgrep -f "cargo test" >/dev/null; do sleep 20; done
W=/work/main/target/debug/wst
for m in smollm2-135m-instruct qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct; do $W models fetch $m || exit 1; done
$W eval -c runW.toml --k 4 --limit 50 --few-shot 0 --no-untrained \
  --writer llamacpp:qwen2.5-coder-0.5b-instruct --writer llamacpp:qwen2.5-coder-1.5b-instruct \
  --out /var/tmp/exp/eval-W50
