set -x
cd /var/tmp/exp
WST_MODEL_CACHE=/var/tmp/wst-models ./binF2/wst eval -c runF.toml --teacher runF/final/adapter --k 4 --limit 100 --few-shot 0 \
  --instruction "Be brief: one line per step, no code, then the answer." --out /var/tmp/exp/eval-F --set student.llamacpp.n_ctx=16384
