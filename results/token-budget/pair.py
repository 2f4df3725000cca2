"""Paired differences between rows of different `wst eval` folders on the same held-out protocol
(the same problems, K and Student seeds): weighted reward, Student tokens per answer and accuracy,
each with a 95% bootstrap interval by template and by problem. Rows from two folders pair only
when the folders' direct rows are the same answers (checked), so a row run later (the Student
writing its own budget) can be set beside rows run earlier (the Teachers).
Usage, from the checkout root:
  python3 results/token-budget/pair.py A_DIR:ROW B_DIR:ROW [A_DIR:ROW B_DIR:ROW ...]
prints A − B for each pair; ROW as the folder's file names it (outcomes-ROW.jsonl)."""
import os
import statistics as st
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stats import accuracy, boot, outcomes, same_protocol, tokens, weighted  # results/stats.py


def load(spec):
    d, sep, row = spec.rpartition(":")
    if not sep or not d:
        raise SystemExit(f"{spec}: expected EVAL_DIR:ROW")
    rows = outcomes(d)
    if row not in rows:
        raise SystemExit(f"{d}: no row {row!r} (rows: {', '.join(rows)})")
    return rows, rows[row]


args = sys.argv[1:]
if not args or len(args) % 2:
    raise SystemExit(__doc__)
measures = {
    "weighted reward": weighted,
    "tokens / answer": tokens,
    "accuracy (points)": lambda o: 100 * accuracy(o),
}
for a_spec, b_spec in zip(args[::2], args[1::2]):
    (a_rows, a), (b_rows, b) = load(a_spec), load(b_spec)
    if set(a) != set(b):
        raise SystemExit(f"{a_spec} and {b_spec} hold different problems ({len(a)} and {len(b)})")
    # The same protocol: the two folders' direct answers must be the same answers.
    if not same_protocol(a_rows, b_rows):
        raise SystemExit(f"{a_spec} and {b_spec}: their folders' direct rows differ (or one has none): not the same protocol")
    ids = list(a)
    cluster = {i: a[i].get("cluster", i) for i in ids}
    print(f"{a_spec} − {b_spec} ({len(ids)} problems, {len(set(cluster.values()))} templates)")
    for label, m in measures.items():
        f = lambda s: st.mean(m(a[i]) - m(b[i]) for i in s)
        lo, hi = boot(f, ids, cluster.get)
        plo, phi = boot(f, ids, lambda i: i)
        star = " *" if lo > 0 or hi < 0 else ""
        print(f"  {label:18} {f(ids):+8.3f} [{lo:+.3f}, {hi:+.3f}] by template{star}; [{plo:+.3f}, {phi:+.3f}] by problem")
