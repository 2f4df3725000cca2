set -x
cd /var/tmp/exp
WST_MODEL_CACHE=/var/tmp/wst-models ./binF2/wst eval -c runE15.toml --teacher runE15/final/adapter --k 4 --limit 50 --few-shot 0 --no-untrained --out /var/tmp/exp/eval-E50
