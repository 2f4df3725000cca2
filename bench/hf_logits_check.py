"""Loads checkpoints wst wrote (or read) in Hugging Face transformers and compares logits with
the ones wst computed (`ours.json` from examples/cuda_check.rs). Usage:
python3 bench/hf_logits_check.py ORIGINAL_DIR TRAINED_DIR OURS_JSON"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    original, trained, ours_path = sys.argv[1:4]
    ours = json.load(open(ours_path))
    ids = torch.tensor([ours["ids"]])
    result = {}
    for name, folder in (("original", original), ("trained", trained)):
        model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
        with torch.no_grad():
            logits = model(ids).logits[0]
        diff = (logits - torch.tensor(ours[name])).abs().max().item()
        result[name] = {"max_abs_diff": diff, "ok": diff < 1e-4}
    result["ok"] = all(v["ok"] for v in result.values() if isinstance(v, dict))
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
