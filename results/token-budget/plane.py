"""Gathers rows of several `wst eval` folders on one held-out protocol into one `results.json`, each
under a name of its own, so that `wst plot --pareto` draws them on one accuracy-tokens plane.
(`wst plot` joins rows of the same name from several files into one series, as a sweep over w
wants; rows of two different Teachers, both called `trained-teacher`, need names that differ.)
A folder joins only when its direct answers are the first folder's (`stats.same_protocol`).
Usage, from the checkout root:
  python3 results/token-budget/plane.py OUT_DIR EVAL_DIR:ROW[=NAME] [EVAL_DIR:ROW[=NAME] ...]
EVAL_DIR without a colon; ROW as the folder's results.json names it (`fixed:brief`, `trained-teacher`); NAME defaults to ROW.
Writes OUT_DIR/results.json (each method's name, values, measures and source folder)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stats import outcomes, same_protocol  # results/stats.py


def parse(spec):
    head, _, name = spec.partition("=")
    d, sep, row = head.partition(":")
    if not sep or not d or not row:
        raise SystemExit(f"{spec}: expected EVAL_DIR:ROW[=NAME]")
    return d, row, name or row


args = sys.argv[1:]
if len(args) < 2:
    raise SystemExit(__doc__)
out, specs = args[0], [parse(s) for s in args[1:]]
# Each folder's outcomes and methods, read and checked once however many of its rows are named.
first, found_in, methods, names = None, {}, [], set()
for d, row, name in specs:
    path = os.path.join(d, "results.json")
    if d not in found_in:
        rows = outcomes(d)
        if first is None:
            first = (d, rows)
        elif not same_protocol(first[1], rows):
            raise SystemExit(f"{d}: its direct answers are not {first[0]}'s (or one has none): not the same protocol")
        with open(path) as f:
            found_in[d] = {m["name"]: m for m in json.load(f)["methods"]}
    found = found_in[d]
    if row not in found:
        raise SystemExit(f"{path}: no method {row!r} (methods: {', '.join(found)})")
    if name in names:
        raise SystemExit(f"{name!r} named twice: give each row a name of its own (ROW=NAME)")
    names.add(name)
    m = found[row]
    methods.append({"name": name, "source": f"{d}:{row}", "n_queries": m["n_queries"], "values": m["values"], "measures": m["measures"]})
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"methods": methods}, f, indent=1)
    f.write("\n")
print(f"wrote {os.path.join(out, 'results.json')}: {len(methods)} rows")
