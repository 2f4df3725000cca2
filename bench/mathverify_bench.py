"""Times Math-Verify 0.9 on the same (answer, gold) items as the wst math plugin benchmark and
reports its agreement with the table's verdicts. Usage: python3 bench/mathverify_bench.py ITEMS.jsonl REPEAT"""
import json
import sys
import time

from math_verify import parse, verify


def main() -> None:
    path, repeat = sys.argv[1], int(sys.argv[2])
    rows = [json.loads(line) for line in open(path)]
    items = rows * repeat
    # Warm-up (grammar compilation, caches).
    for r in rows[:20]:
        verify(parse(r["gold"]), parse(r["answer"]))
    start = time.perf_counter()
    accepted = 0
    for r in items:
        try:
            accepted += bool(verify(parse(r["gold"]), parse(r["answer"])))
        except Exception:
            pass
    secs = time.perf_counter() - start
    agree = sum(bool(verify(parse(r["gold"]), parse(r["answer"]))) == r["verdict"] for r in rows)
    print(json.dumps({
        "grader": "Math-Verify 0.9 (Python)", "items": len(items), "seconds": round(secs, 4),
        "items_per_s": round(len(items) / secs), "accepted": accepted,
        "agreement_with_table": f"{agree}/{len(rows)}",
    }))


if __name__ == "__main__":
    main()
