"""Completion tokens/s of an OpenAI-compatible server for 1, 4 and 16 concurrent answers.

Each answer is its own request (n = 1; llama-cpp-python's server ignores n), all sent at once
from threads, with the prompts, 128-token limit and temperature of the Rust bench
`student_throughput`. Run by bench/qwen_students.sh.
Usage: python llamapy_server_throughput.py BASE_URL [COUNTS...]
Env: MODEL (the served model's name; default `bench`), LABEL (the rows' label)."""
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

PROMPTS = [
    "Write a long story about a robot who learns to paint.",
    "Explain, step by step, how a bicycle stays upright.",
    "Describe a day in the life of a lighthouse keeper.",
    "Write a letter from a cat to its owner about breakfast.",
]
url = sys.argv[1].rstrip("/") + "/chat/completions"
counts = [int(c) for c in sys.argv[2:]] or [1, 4, 16]
tokens = int(__import__("os").environ.get("WST_BENCH_TOKENS", "128"))
model = __import__("os").environ.get("MODEL", "bench")
label = __import__("os").environ.get("LABEL", "llama-cpp-python server")


def answer(i):
    body = {"model": model, "messages": [{"role": "user", "content": PROMPTS[(i // 4) % 4]}],
            "n": 1, "temperature": 0.8, "max_tokens": tokens, "seed": 10 + i}
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.load(r)["usage"]["completion_tokens"]


answer(0)  # warm-up
for n in counts:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        got = sum(pool.map(answer, range(n)))
    secs = time.perf_counter() - t0
    print(f"{label}, {n} concurrent answers: {got} tokens in {secs:.2f} s = {got / secs:.1f} tok/s", flush=True)
