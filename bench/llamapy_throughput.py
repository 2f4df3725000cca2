"""llama-cpp-python decode tokens/s on the same GGUF and settings as the Rust bench
(1 thread, n_ctx 2048, temperature 0.8, 128 tokens, same prompt). Run by bench/students.sh."""
import sys, time
from llama_cpp import Llama

llm = Llama(model_path=sys.argv[1], n_threads=1, n_threads_batch=1, n_ctx=2048, verbose=False)
msgs = [{"role": "user", "content": "Write a long story about a robot who learns to paint."}]
llm.create_chat_completion(messages=msgs, max_tokens=8, temperature=0.8, seed=0)
for n, reps in [(1, 3), (4, 2)]:
    t0 = time.perf_counter(); tokens = 0
    for r in range(reps):
        # llama-cpp-python has no parallel sequences: n answers are n sequential completions.
        for i in range(n):
            out = llm.create_chat_completion(messages=msgs, max_tokens=128, temperature=0.8, seed=10 + r + i)
            tokens += out["usage"]["completion_tokens"]
    secs = time.perf_counter() - t0
    print(f"llama-cpp-python n={n}: {tokens} tokens in {secs:.2f} s = {tokens / secs:.1f} tok/s")
