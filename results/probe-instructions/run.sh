set -x
B=/var/tmp/exp/binD/wst
cd /work/main
$B eval -c /var/tmp/exp/probeD.toml --k 4 --limit 40 --few-shot 0 --no-untrained --out /var/tmp/exp/probeD/direct
$B eval -c /var/tmp/exp/probeD.toml --k 4 --limit 40 --few-shot 0 --no-untrained --out /var/tmp/exp/probeD/nocode \
  --set 'student.prompt.template="{{ query }}\n\nA tutor'"'"'s advice (it may be wrong; use it only if it helps):\nExplain in a few short sentences. Do not write code."'
$B eval -c /var/tmp/exp/probeD.toml --k 4 --limit 40 --few-shot 0 --no-untrained --out /var/tmp/exp/probeD/brief \
  --set 'student.prompt.template="{{ query }}\n\nA tutor'"'"'s advice (it may be wrong; use it only if it helps):\nBe brief: one line per step, no code, then the answer."'
