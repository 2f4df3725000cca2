"""How much a per-problem choice among a folder's rows could gain, honestly: the in-sample oracle
(each problem's best row by the mean of its K answers, scored on those same answers) is inflated
by the noise of K answers, so the choice is also cross-fitted: made on half of each problem's
answers and scored on the other half, both ways round, averaged. The cross-fitted choice still
sees the Student's answers to the very problem, which a Teacher (reading only the question) does
not: it bounds what routing between these rows can reach with K answers' worth of evidence.
Usage, from the checkout root:
  python3 results/token-budget/crossfit.py EVAL_DIR BASELINE_ROW ROWS|all [ROWS ...]
ROWS comma-separated as the folder's files name them (`direct,fixed_brief`); prints, for each
set, the in-sample and cross-fitted oracle's weighted reward and the cross-fitted one minus
BASELINE_ROW's, with a 95% interval by template and by problem."""
import os
import statistics as st
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stats import boot, outcomes  # results/stats.py


def chooser(rows, fit, score):
    """A problem's value when the row with the best mean over answers `fit` is scored on `score`."""

    def value(p):
        best = max(rows, key=lambda r: st.mean(p[r]["scores"][k] for k in fit))
        return st.mean(p[best]["scores"][k] for k in score)

    return value


args = sys.argv[1:]
if len(args) < 3:
    raise SystemExit(__doc__)
d, baseline, sets = args[0], args[1], args[2:]
rows = outcomes(d)
if baseline not in rows:
    raise SystemExit(f"{d}: no row {baseline!r} (rows: {', '.join(rows)})")
ids = list(rows[baseline])
k = len(rows[baseline][ids[0]]["scores"])
if k < 2:
    raise SystemExit(f"{d}: K = {k}; cross-fitting needs at least 2 answers a problem")
halves = (list(range(k // 2)), list(range(k // 2, k)))
cluster = {i: rows[baseline][i].get("cluster", i) for i in ids}
base = {i: st.mean(rows[baseline][i]["scores"]) for i in ids}
print(f"{d}: {len(ids)} problems in {len(set(cluster.values()))} templates, K = {k}; {baseline} {st.mean(base.values()):.3f}")
for spec in sets:
    chosen = list(rows) if spec == "all" else spec.split(",")
    missing = [r for r in chosen if r not in rows]
    if missing:
        raise SystemExit(f"{d}: no row {missing[0]!r} (rows: {', '.join(rows)})")
    per = {i: {r: rows[r][i] for r in chosen} for i in ids}
    in_sample = chooser(chosen, range(k), range(k))
    a, b = chooser(chosen, *halves), chooser(chosen, *reversed(halves))
    crossfit = {i: (a(per[i]) + b(per[i])) / 2 for i in ids}
    gain = lambda s: st.mean(crossfit[i] - base[i] for i in s)
    lo, hi = boot(gain, ids, cluster.get)
    plo, phi = boot(gain, ids, lambda i: i)
    print(f"  {spec}: in-sample oracle {st.mean(in_sample(per[i]) for i in ids):.3f}, cross-fitted {st.mean(crossfit.values()):.3f}; "
          f"cross-fitted − {baseline} {gain(ids):+.3f} [{lo:+.3f}, {hi:+.3f}] by template; [{plo:+.3f}, {phi:+.3f}] by problem")
