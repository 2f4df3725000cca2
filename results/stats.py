"""Statistics shared by the analysis scripts under results/: ranks with ties, Spearman's rho,
the cluster bootstrap (resampling whole templates, as the token-cost issue asks, or single
problems when every problem is its own cluster), the loader of a `wst eval` folder's outcomes and
the measures read from one outcome."""
import glob
import json
import os
import random
import statistics as st


def outcomes(d):
    """A `wst eval` folder's per-problem outcomes: {row: {problem id: outcome}}, a row named as its
    file `outcomes-<row>.jsonl` names it (`fixed_brief`, `trained-teacher`, ...)."""
    rows = {}
    for f in sorted(glob.glob(os.path.join(d, "outcomes-*.jsonl"))):
        with open(f) as lines:
            rows[os.path.basename(f)[len("outcomes-"):-len(".jsonl")]] = {r["id"]: r for r in map(json.loads, lines)}
    if not rows:
        raise SystemExit(f"{d}: no outcomes-*.jsonl (expected a `wst eval --out` folder)")
    return rows


def same_protocol(a, b):
    """Whether two folders' outcomes (`outcomes(d)`) are one protocol: the same problems, and
    direct rows that are the same answers (tokens and scores of every answer), so rows run at
    different times can be set beside each other."""
    da, db = a.get("direct"), b.get("direct")
    if da is None or db is None or set(da) != set(db):
        return False
    return all(da[i]["completion_tokens"] == db[i]["completion_tokens"] and da[i]["scores"] == db[i]["scores"] for i in da)


def weighted(o):
    """An outcome's weighted reward: the mean over its K answers of the recipe's reward."""
    return o["mean"]


def accuracy(o):
    """An outcome's accuracy: the share of its K answers graded right."""
    return o["values"]["math/accuracy"]


def tokens(o):
    """An outcome's Student completion tokens per answer (mean over its K answers)."""
    return st.mean(o["completion_tokens"])


def rank(v):
    """Ranks from 0, ties sharing their mean rank."""
    o = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(o):
        j = i
        while j + 1 < len(o) and v[o[j + 1]] == v[o[i]]:
            j += 1
        for k in range(i, j + 1):
            r[o[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a, b):
    """Spearman's rho: Pearson's correlation of the ranks (nan when either side is constant)."""
    ra, rb = rank(a), rank(b)
    ma, mb = st.mean(ra), st.mean(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return num / den if den else float("nan")


def boot(f, ids, cluster_of, n=2000, seed=0):
    """95% percentile interval of f over resamples of ids, drawing whole clusters
    (cluster_of maps an id to its cluster; lambda i: i resamples single ids)."""
    cl = {}
    for i in ids:
        cl.setdefault(cluster_of(i), []).append(i)
    keys = list(cl)
    rnd = random.Random(seed)
    vals = []
    for _ in range(n):
        s = [i for k in (rnd.choice(keys) for _ in keys) for i in cl[k]]
        vals.append(f(s))
    vals = sorted(v for v in vals if v == v)  # a resample can make a rank correlation undefined
    if not vals:  # every resample undefined (e.g. one side constant): no interval
        return float("nan"), float("nan")
    return vals[int(0.025 * len(vals))], vals[int(0.975 * len(vals))]
