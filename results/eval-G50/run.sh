set -x
cd /var/tmp/exp
while pgrep -f "runG-train.toml" >/dev/null; do sleep 20; done
WST_MODEL_CACHE=/var/tmp/wst-models ./binG/wst eval -c runG.toml --teacher runG/final/adapter --k 4 --limit 50 --few-shot 0 \
  --instruction "Be brief: one line per step, no code, then the answer." --out /var/tmp/exp/eval-G50
