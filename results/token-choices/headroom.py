"""Headroom for a Teacher that picks among fixed instructions per problem, from the held-out
outcomes already evaluated (by default results/token-choices/eval-w0.5, K = 1, 59 problems): the
per-problem oracle over the menu, whether difficulty shows in the text (Spearman, cluster
bootstrap over templates), and an untrained length router. Run from the checkout root:
python3 results/token-choices/headroom.py [EVAL_DIR HELDOUT_JSONL]
(e.g. results/token-budget/eval-heldout117 results/token-budget/heldout-117.jsonl: K = 4, where
an outcome's values are the means of its K answers, so the oracle's pick is less luck)"""
import json, os, sys, statistics as st
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import stats  # results/stats.py
from stats import spearman
D = sys.argv[1] if len(sys.argv) > 1 else "results/token-choices/eval-w0.5"
rows = stats.outcomes(D)
ids = list(rows["direct"])
q = {r["id"]: r for r in map(json.loads, open(sys.argv[2] if len(sys.argv) > 2 else "results/token-budget/heldout.jsonl"))}
def wr(o, w): return o["values"]["math/accuracy"] - w * o["values"]["cost/tokens"] / 512
def boot(f, ids, n=2000):
    return stats.boot(f, ids, lambda i: rows["direct"][i]["cluster"], n)
fixed = [k for k in rows if k.startswith("fixed_")]
for w in (0.5, 0.25):
    print(f"== w = {w}")
    for menu_name, menu in [("direct+CoD", ["direct", "fixed_cod"]), ("direct+all fixed", ["direct"] + fixed), ("all fixed (no direct)", fixed)]:
        f = lambda s: st.mean(max(wr(rows[m][i], w) for m in menu) - wr(rows["direct"][i], w) for i in s)
        print(f"oracle {menu_name}: {st.mean(max(wr(rows[m][i], w) for m in menu) for i in ids):.3f} (direct {st.mean(wr(rows['direct'][i], w) for i in ids):.3f}); gain {f(ids):+.3f} {boot(f, ids)}")
        if menu_name == "direct+CoD":
            n_cod = sum(wr(rows['fixed_cod'][i], w) > wr(rows['direct'][i], w) for i in ids)
            print(f"  CoD strictly better on {n_cod}/{len(ids)}")
# Is difficulty visible in the text? Spearman between question length and direct tokens / accuracy.
qtext = lambda i: q[i].get("question") or q[i].get("query") or ""
L = [len(qtext(i).split()) for i in ids]
nums = [sum(c.isdigit() for c in qtext(i)) for i in ids]
dt = [rows["direct"][i]["values"]["cost/tokens"] for i in ids]
da = [rows["direct"][i]["values"]["math/accuracy"] for i in ids]
ct = [rows["fixed_cod"][i]["values"]["math/accuracy"] for i in ids]
gold_steps = [q[i]["solution"].count("<<") for i in ids]  # computations (<<a*b=c>>) in the gold solution
print("spearman(question words, direct tokens)", round(spearman(L, dt), 3))
print("spearman(question words, direct acc)", round(spearman(L, da), 3))
print("spearman(gold solution computations, direct tokens)", round(spearman(gold_steps, dt), 3), "acc", round(spearman(gold_steps, da), 3))
print("spearman(question words, CoD acc)", round(spearman(L, ct), 3))
def fsp(x, y):
    return lambda s: spearman([x[ids.index(i)] for i in s], [y[ids.index(i)] for i in s])
print("  CI words~direct tokens", boot(fsp(L, dt), ids, 1000))
print("  CI gold computations~direct tokens", boot(fsp(gold_steps, dt), ids, 1000))

# A fixed, untrained router: Chain of Draft when the question is shorter than the training
# problems' median length (in words), direct prompting otherwise. Its threshold comes from the
# training questions' text only (no outcomes), so nothing is tuned on held-out data.
train = [json.loads(l) for l in open("examples/data/gsm_symbolic_train.jsonl")]
tl = sorted(len((t.get("question") or t.get("query")).split()) for t in train if int(str(t.get("template", "0000"))) < 70)
med = tl[len(tl)//2]
print("training median words", med, "of", len(tl))
for w in (0.5, 0.25):
    pick = lambda i: "fixed_cod" if len(qtext(i).split()) < med else "direct"
    f = lambda s: st.mean(wr(rows[pick(i)][i], w) - wr(rows["direct"][i], w) for i in s)
    g = lambda s: st.mean(wr(rows[pick(i)][i], w) - wr(rows["fixed_cod"][i], w) for i in s)
    acc = st.mean(rows[pick(i)][i]["values"]["math/accuracy"] for i in ids)
    tok = st.mean(rows[pick(i)][i]["values"]["cost/tokens"] for i in ids)
    print(f"w={w}: router {st.mean(wr(rows[pick(i)][i], w) for i in ids):.3f} acc {acc:.3f} tokens {tok:.1f}; vs direct {f(ids):+.3f} {boot(f, ids)}; vs CoD {g(ids):+.3f} {boot(g, ids)}; CoD on {sum(pick(i)=='fixed_cod' for i in ids)}")
