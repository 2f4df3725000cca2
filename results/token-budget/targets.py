"""The token-cost issue's targets, checked on one `wst eval` folder (its outcomes-*.jsonl and
results.json): the trained Teacher against direct prompting, its untrained self and the best
fixed instruction on the weighted reward; whether a fixed instruction dominates it on the
accuracy-tokens plane; its token cut and accuracy loss against direct prompting; and whether the
budgets it writes track the problem's difficulty. Every interval is a 95% bootstrap by template
(whole templates resampled) with the one by problem beside it.
Usage, from the checkout root: python3 results/token-budget/targets.py EVAL_DIR"""
import json
import os
import re
import statistics as st
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stats  # results/stats.py
from stats import boot, outcomes, spearman

d = sys.argv[1]
rows = outcomes(d)
results = json.load(open(f"{d}/results.json"))
ids = list(rows["direct"])
cluster = {i: rows["direct"][i].get("cluster", i) for i in ids}
fixed = sorted(k for k in rows if k.startswith("fixed"))
best = (results.get("best_fixed") or {}).get("method", "").replace(":", "_")


def weighted(row, i):
    return stats.weighted(rows[row][i])


def acc(row, i):
    return stats.accuracy(rows[row][i])


def tokens(row, i):
    return stats.tokens(rows[row][i])


def mean(measure, row):
    return st.mean(measure(row, i) for i in ids)


def paired(measure, a, b):
    """a - b over the problems, with its interval by template and by problem."""
    f = lambda s: st.mean(measure(a, i) - measure(b, i) for i in s)
    return f(ids), boot(f, ids, cluster.get), boot(f, ids, lambda i: i)


def show(label, diff, by_template, by_problem, scale=1.0, unit=""):
    lo, hi = by_template
    mark = " *" if lo > 0 or hi < 0 else ""
    print(f"  {label}: {diff * scale:+.3f}{unit} [{lo * scale:+.3f}, {hi * scale:+.3f}] by template{mark}; "
          f"[{by_problem[0] * scale:+.3f}, {by_problem[1] * scale:+.3f}] by problem")
    return lo > 0


def budget_tracking(row_names):
    """Spearman's rho between the number an instruction holds and the problem's direct tokens and
    accuracy, for each row whose instructions are written per problem (Teachers, writers)."""
    print("\nDoes the written budget track difficulty? (Spearman, problems whose instruction holds a number)")
    for row in row_names:
        budget = {}
        for i in ids:
            m = re.search(r"\d+", rows[row][i]["instruction"] or "")
            if m:
                budget[i] = int(m.group())
        have = [i for i in ids if i in budget]
        print(f"  {row}: a number in {len(have)} of {len(ids)} instructions")
        if len(have) < 5:
            continue
        if len({budget[i] for i in have}) < 2:
            print(f"    every one is {budget[have[0]]}: no correlation to measure")
            continue
        for label, measure in (("direct tokens", tokens), ("direct accuracy", acc)):
            f = lambda s: spearman([budget[i] for i in s], [measure("direct", i) for i in s])
            lo, hi = boot(f, have, cluster.get)
            print(f"    rho(budget, {label}) {f(have):+.2f} [{lo:+.2f}, {hi:+.2f}] by template")


print(f"{d}: {len(ids)} problems in {len(set(cluster.values()))} templates; K = {len(rows['direct'][ids[0]]['scores'])}")
for r in rows:
    print(f"  {r:28} weighted {mean(weighted, r):+.3f}  accuracy {mean(acc, r):.3f}  tokens {mean(tokens, r):6.1f}")
written = [r for r in ("untrained-teacher", "trained-teacher") if r in rows] + sorted(r for r in rows if r.startswith("writer_"))
if "trained-teacher" not in rows:
    print("\nno trained-teacher row: no target to check")
    budget_tracking(written)
    sys.exit(0)
t = "trained-teacher"

print("\nTarget 1: the trained Teacher above direct prompting and its untrained self (weighted reward)")
ok1 = show("vs direct", *paired(weighted, t, "direct"))
if "untrained-teacher" in rows:
    ok1 &= show("vs untrained", *paired(weighted, t, "untrained-teacher"))
else:
    ok1 = False
    print("  (no untrained-teacher row)")
print(f"  -> {'met' if ok1 else 'not met'}")

print(f"\nTarget 2: above the best fixed instruction chosen on training problems ({best or 'none chosen'}), none dominating it")
ok2 = best in rows and show(f"vs {best}", *paired(weighted, t, best))
ta, tt = mean(acc, t), mean(tokens, t)
dominating = [f for f in fixed if mean(acc, f) >= ta and mean(tokens, f) <= tt and (mean(acc, f), mean(tokens, f)) != (ta, tt)]
print(f"  fixed rows dominating it on accuracy-tokens: {', '.join(dominating) or 'none'} (of {len(fixed)})")
ok2 = bool(ok2) and not dominating
print(f"  -> {'met' if ok2 else 'not met'}")

print("\nTarget 3: at least 40% fewer Student tokens than direct, accuracy loss <= 2 points with its lower bound above -5")
direct_tokens = mean(tokens, "direct")
cut = paired(tokens, t, "direct")
show("tokens vs direct (share of direct's)", cut[0], cut[1], cut[2], scale=100 / direct_tokens, unit="%")
a = paired(acc, t, "direct")
show("accuracy vs direct (points)", *a, scale=100)
ok3 = cut[0] / direct_tokens <= -0.40 and a[0] >= -0.02 and a[1][0] > -0.05
print(f"  -> {'met' if ok3 else 'not met'}")

budget_tracking(written)
