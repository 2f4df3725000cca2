"""What the router Teachers chose on the held-out problems, and whether the choice tracks the
problem's difficulty: per row, how often each instruction was chosen, the Student's accuracy and
tokens under each choice, and Spearman's rho (95% bootstrap by template) between choosing the
TALE line (the one that lets the Student spend the most) and the Student's direct tokens and
direct accuracy on that problem.
Usage, from the checkout root: python3 results/token-router/choices.py [EVAL_DIR]"""
import collections
import os
import statistics as st
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stats import accuracy as acc, boot, outcomes, spearman, tokens as tok  # results/stats.py

d = sys.argv[1] if len(sys.argv) > 1 else "results/token-router/eval-heldout117"
rows_of = outcomes(d)
direct = rows_of["direct"]
ids = list(direct)
cluster = {i: direct[i].get("cluster", i) for i in ids}
# Each instruction by its menu name (examples/token_budget/menu.txt: `name: text` lines).
short = {text.strip(): name.strip() for name, text in
         (l.split(":", 1) for l in open("examples/token_budget/menu.txt") if ":" in l and not l.startswith("#"))}
for row in ("untrained-teacher", "trained-teacher"):
    rows = rows_of[row]
    pick = {i: short.get(rows[i]["instruction"], rows[i]["instruction"]) for i in ids}
    print(f"{row}: chose " + ", ".join(f"{c} {n}" for c, n in collections.Counter(pick.values()).most_common()))
    for c in sorted(set(pick.values())):
        s = [i for i in ids if pick[i] == c]
        print(f"  {c:13} {len(s):3} problems: accuracy {st.mean(acc(rows[i]) for i in s):.3f} (direct there "
              f"{st.mean(acc(direct[i]) for i in s):.3f}), tokens {st.mean(tok(rows[i]) for i in s):6.1f} "
              f"(direct there {st.mean(tok(direct[i]) for i in s):6.1f})")
    long = {i: 1.0 if pick[i] == "tale-100" else 0.0 for i in ids}
    for label, measure in (("direct tokens", tok), ("direct accuracy", acc)):
        f = lambda s: spearman([long[i] for i in s], [measure(direct[i]) for i in s])
        lo, hi = boot(f, ids, cluster.get)
        print(f"  rho(chose tale-100, {label}) {f(ids):+.2f} [{lo:+.2f}, {hi:+.2f}] by template")
