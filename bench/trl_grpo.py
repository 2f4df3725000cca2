"""TRL's GRPOTrainer on torch CPU with the settings of tests/benches/teacher_grpo.rs: the same
SmolLM2-135M-Instruct weights (a Hugging Face folder wst wrote from the GGUF), the same 4 GSM8K
prompts with the same chat template, G = 8 completions of up to 128 tokens at temperature 1,
β = 0.04 (reference model on), micro-batches of 4 completions, fp32, one optimiser step, the
same thread count. Prints one JSON line: generation and step seconds, tokens, peak RSS.
`lora` trains a PEFT adapter (r 16, alpha 32, every linear layer of the blocks, as wst's default).

The scaling sweep (bench/scaling.sh) also sets TRL_G (completions per prompt), TRL_TOKENS,
TRL_BETA, TRL_PROMPTS and TRL_EXACT=1 (every completion exactly TRL_TOKENS long, through
`min_new_tokens`), and reads the generation's share of the step from the time spent in
`_generate_and_score_completions` (with β = 0 that is sampling and rewards only; with β > 0 it
also holds the reference model's forward).

Usage: python bench/trl_grpo.py MODEL_DIR THREADS [full|lora]"""
import json, os, resource, sys, time

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

model_dir, threads = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "full"
if mode not in ("full", "lora"):
    sys.exit(f"mode must be full or lora, got {mode!r}")
torch.set_num_threads(threads)
torch.manual_seed(1)
PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. She has only half of the money she needs. How much more does she need?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
]
G = int(os.environ.get("TRL_G", 8))
MAX_TOKENS = int(os.environ.get("TRL_TOKENS", 128))
BETA = float(os.environ.get("TRL_BETA", 0.04))
N_PROMPTS = int(os.environ.get("TRL_PROMPTS", 4))
EXACT = os.environ.get("TRL_EXACT") == "1"
if not 1 <= N_PROMPTS <= len(PROMPTS) or G % 4:
    sys.exit(f"TRL_PROMPTS must be 1..{len(PROMPTS)} and TRL_G a multiple of 4 (micro-batches of 4), got {N_PROMPTS}, {G}")
SYSTEM = "You are a teacher. Read the problem and write short, specific instructions that will help a student solve it. Do not solve the problem yourself."
data = Dataset.from_list([{"prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Problem: {p}\n\nWrite instructions for the student."}]} for p in PROMPTS[:N_PROMPTS]])
tokens = []


def reward(completions, completion_ids=None, **kw):
    # Same toy reward as the Rust bench: the sum of the completion's token ids modulo 7 (it
    # varies even when every completion has the same length, so advantages are not all zero).
    ids = completion_ids or [[ord(ch) for ch in c[0]["content"]] for c in completions]
    tokens.extend(len(i) for i in ids)
    return [float(sum(i) % 7) for i in ids]


class Timer(TrainerCallback):
    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.step_s = time.perf_counter() - self.t0


cfg = GRPOConfig(
    output_dir="/tmp/trl-bench", use_cpu=True, bf16=False, fp16=False, num_generations=G,
    per_device_train_batch_size=4, gradient_accumulation_steps=G * N_PROMPTS // 4, max_completion_length=MAX_TOKENS,
    generation_kwargs={"min_new_tokens": MAX_TOKENS} if EXACT else None,
    temperature=1.0, top_p=1.0, beta=BETA, learning_rate=1e-6, max_steps=1, logging_steps=1,
    report_to=[], save_strategy="no", seed=1, dataloader_num_workers=0, shuffle_dataset=False,
)
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(model_dir)
timer = Timer()
peft_config = None
if mode == "lora":
    from peft import LoraConfig
    peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=data, processing_class=tok, callbacks=[timer],
                      peft_config=peft_config)
generation_s = []
_generate = trainer._generate_and_score_completions


def timed_generate(*a, **kw):
    t = time.perf_counter()
    out = _generate(*a, **kw)
    generation_s.append(time.perf_counter() - t)
    return out


trainer._generate_and_score_completions = timed_generate
t0 = time.perf_counter()
trainer.train()
total = time.perf_counter() - t0
print(json.dumps({
    "peer": "TRL GRPOTrainer", "mode": mode, "threads": threads, "prompts": N_PROMPTS, "num_generations": G, "beta": BETA,
    "exact_length": MAX_TOKENS if EXACT else None, "completions": len(tokens), "completion_tokens": sum(tokens),
    "step_s_including_generation": round(timer.step_s, 1), "generation_and_scoring_s": round(sum(generation_s), 1),
    "step_s_without_generation": round(timer.step_s - sum(generation_s), 1), "train_s": round(total, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
