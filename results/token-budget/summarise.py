"""Summarises a token-budget training run: one table row per step, and how often the Teacher
wrote a budget (a number followed by words/tokens/steps) after the primed prefix.
Usage: python3 summarise.py RUN_DIR"""
import json
import re
import sys

run = sys.argv[1]
prefix = "Let's think step by step and use less than"
print("| step | reward r | Student score with / without instruction | accuracy | tokens / answer | step s |")
print("|---:|---:|---|---:|---:|---:|")
for line in open(f"{run}/metrics.jsonl"):
    r = json.loads(line)
    if "reward" not in r:
        continue
    print(f"| {r['step']} | {r['reward']:+.3f} | {r['wst/student_score']:.3f} / {r['wst/student_baseline']:.3f} | "
          f"{r['rewards/math/accuracy/mean']:.3f} | {r['rewards/cost/tokens/mean']:.0f} | {r['time/step_secs']:.0f} |")
budget = re.compile(r"^\s*\d+\s*(words|tokens|steps|lines|sentences)\b")
by_step = {}
for line in open(f"{run}/completions.jsonl"):
    c = json.loads(line)
    rest = c["instruction"][len(prefix):] if c["instruction"].startswith(prefix) else c["instruction"]
    n, b = by_step.get(c["step"], (0, 0))
    by_step[c["step"]] = (n + 1, b + bool(budget.match(rest)))
print()
print("budget-shaped instructions per step:", ", ".join(f"{s}: {b}/{n}" for s, (n, b) in sorted(by_step.items())))
