"""The shipped Teacher served in front of its Student gives `wst eval`'s outcomes.

    python3 bench/serve_consistency.py [--wst PATH] [--queries 20] [--k 2]

Runs `wst eval` on the first N held-out problems of examples/gsm8k_weak_to_strong.toml with
the shipped Teacher (examples/teachers/gsm8k-smollm2), then `wst serve` with the same config
and Teacher, sends the same problems through the HTTP API with the evaluation's seeds (the
Student seed `wst eval` gives each problem, the problem's id as the Teacher key), grades the
served answers with the same math plugin (`wst score`), and compares per problem: the
instruction, each answer's token count, and the accuracy. Prints a table and exits 1 on any
difference. Both use fresh response caches, so every answer is computed.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.request

MASK = (1 << 64) - 1


def mix(parts):
    """wst_sdk::types::mix (splitmix64 finaliser over the parts)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h ^= (p + 0x9E3779B97F4A7C15 + ((h << 6) & MASK) + (h >> 2)) & MASK
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
        h ^= h >> 31
    return h


def hash_str(s):
    """wst_sdk::types::hash_str (FNV-1a)."""
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wst", default=os.environ.get("WST", "wst"))
    ap.add_argument("--config", default="examples/gsm8k_weak_to_strong.toml")
    ap.add_argument("--teacher", default="examples/teachers/gsm8k-smollm2")
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="more config overrides for both sides (KEY=VALUE)")
    ap.add_argument("--work", help="a folder of an earlier run to reuse (its cache makes the evaluation free)")
    a = ap.parse_args()
    cfg = tomllib.load(open(a.config, "rb"))
    seed = cfg.get("grpo", {}).get("seed", 42)
    fields = cfg["data"]["eval"].get("fields", {})
    rows = [json.loads(l) for l in open(cfg["data"]["eval"]["path"]) if l.strip()][: a.queries]
    work = a.work or tempfile.mkdtemp(prefix="wst-serve-consistency-")
    common = ["--config", a.config, "--set", f'student.cache_dir="{work}/cache"'] + [x for kv in a.set for x in ("--set", kv)]

    # 1. wst eval: the trained-Teacher row on the first N problems.
    subprocess.run([a.wst, "eval", *common, "--teacher", a.teacher, "--limit", str(a.queries), "--num-answers", str(a.k),
                    "--few-shot", "0", "--no-untrained", "--out", f"{work}/eval"], check=True)
    trained = [f for f in os.listdir(f"{work}/eval") if f.startswith("outcomes-") and "direct" not in f]
    assert len(trained) == 1, trained
    evaluated = {o["id"]: o for o in map(json.loads, open(f"{work}/eval/{trained[0]}"))}

    # 2. wst serve with the same config and Teacher.
    server = subprocess.Popen([a.wst, "serve", *common, "--teacher", a.teacher, "--port", "0", "--name", "t"], stderr=subprocess.PIPE, text=True)
    base = None
    for line in server.stderr:
        sys.stderr.write(line)
        if line.startswith("ready: serving"):
            base = line.split(" on ")[1].strip()
            break
    assert base, "wst serve did not start"
    served, graded_input = {}, []
    try:
        for r in rows:
            qid, query, gold = r[fields.get("id", "id")], r[fields.get("query", "question")], r[fields.get("gold", "answer")]
            body = {"model": "t", "messages": [{"role": "user", "content": query}], "n": a.k,
                    "seed": mix([seed, hash_str(qid)]), "wst": {"query_id": qid}}
            req = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(body).encode(), headers={"content-type": "application/json"})
            reply = json.load(urllib.request.urlopen(req, timeout=600))
            served[qid] = reply
            for c in reply["choices"]:
                graded_input.append({"id": qid, "query": query, "answer": c["message"]["content"], "gold": gold})
    finally:
        server.terminate()
        server.wait(timeout=60)
    with open(f"{work}/served.jsonl", "w") as f:
        for g in graded_input:
            f.write(json.dumps(g) + "\n")
    scores = subprocess.run([a.wst, "score", "--reward", "math", "--input", f"{work}/served.jsonl"], check=True, capture_output=True, text=True).stdout
    accuracy = [json.loads(l)["accuracy"] for l in scores.splitlines() if l.strip()]

    # 3. Compare per problem.
    differ, i = 0, 0
    print("| problem | same instruction | tokens (eval) | tokens (served) | accuracy (eval) | accuracy (served) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        qid = r[fields.get("id", "id")]
        e, s = evaluated[qid], served[qid]
        acc = accuracy[i : i + a.k]
        i += a.k
        # usage.completion_tokens is the sum over the K answers.
        s_total = s["usage"]["completion_tokens"]
        same_ins = e["instruction"] == s["wst"]["instruction"]
        # The value is named `accuracy` with one reward, `math/accuracy` with several.
        e_acc = e["values"].get("math/accuracy", e["values"].get("accuracy"))
        s_acc = sum(acc) / len(acc)
        ok = same_ins and sum(e["completion_tokens"]) == s_total and abs(e_acc - s_acc) < 1e-9
        differ += not ok
        print(f"| {qid} | {'yes' if same_ins else 'NO'} | {sum(e['completion_tokens'])} | {s_total} | {e_acc:.2f} | {s_acc:.2f} |")
    print(f"{len(rows) - differ} of {len(rows)} problems identical (instruction, Student tokens, accuracy over K = {a.k})")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
