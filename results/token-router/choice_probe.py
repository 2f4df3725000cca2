"""The untrained Teacher's probability of each of a recipe's `teacher.choices` under constrained
decoding (at each token, renormalised over the tokens that continue some choice, as wst decodes),
on the first 12 training problems of templates 0000-0069. Used to check that GRPO's groups will
hold more than one action. Needs transformers and torch (reads the catalog's GGUF, dequantized):
python results/token-router/choice_probe.py RECIPE.toml [TEMPERATURE]"""
import json, os, sys, torch, tomllib
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
cfg = tomllib.load(open(sys.argv[1], "rb"))
t = cfg["teacher"]
d = os.path.join(os.environ.get("WST_MODEL_CACHE", os.path.expanduser("~/.cache/wst/models")), "qwen2.5-coder-0.5b-instruct")
f = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).eval()
qs = [json.loads(l) for l in open("examples/data/gsm_symbolic_train.jsonl")]
qs = [q for q in qs if int(q["template"]) < 70][:12]
temp = float(sys.argv[2]) if len(sys.argv) > 2 else cfg.get("grpo", {}).get("temperature", 1.0)
choices = t["choices"]
cids = [tok(c, add_special_tokens=False).input_ids for c in choices]
for q in qs:
    user = t["prompt_template"].replace("{{ query }}", q["question"])
    msgs = [{"role": "system", "content": t["system_prompt"]}, {"role": "user", "content": user}]
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + t.get("instruction_prefix", "")
    p_ids = tok(prompt, return_tensors="pt").input_ids
    probs = []
    for i, c in enumerate(cids):
        ids = torch.cat([p_ids, torch.tensor([c])], 1)
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, p_ids.shape[1] - 1:-1] / temp, -1)
        p = 1.0
        for j, tid in enumerate(c):  # constrained decoding: renormalise over the tokens that continue some choice
            allowed = sorted({o[j] for o in cids if len(o) > j and o[:j] == c[:j]})
            w = torch.softmax(logp[j, allowed], 0)
            p *= w[allowed.index(tid)].item()
        probs.append(p)
    print(q["id"], " ".join(f"{p:.3f}" for p in probs))
