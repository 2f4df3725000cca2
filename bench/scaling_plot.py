"""Table and plots of bench/scaling.sh's JSON lines: one GRPO step's time (without sampling)
and peak memory against completion length (at G = 8) and against G (at 128 tokens), wst next to
TRL, and the marginal cost of each doubling (ms and MB per added completion token): constant
marginal costs mean linear growth, rising ones a super-linear term. Needs matplotlib (the TRL env has it).

Usage: python bench/scaling_plot.py [results/bench-scaling.jsonl] [OUT_DIR]"""
import json, sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt

src = sys.argv[1] if len(sys.argv) > 1 else "results/bench-scaling.jsonl"
out = sys.argv[2] if len(sys.argv) > 2 else "results/bench-scaling"
rows = [json.loads(l) for l in open(src) if l.strip().startswith("{")]
for r in rows:
    r["peer"] = "TRL" if r.get("peer", "").startswith("TRL") else "wst"
    r["step_s"] = r["step_s_without_generation"] if r["peer"] == "TRL" else r["grpo_step_seconds"]
    r["tokens"] = r["exact_length"]
    r["total_tokens"] = r["completion_tokens"]
    r["peak_gb"] = r["peak_rss_mb"] / 1024

print("| completion tokens | G | tokens in the step | wst step | TRL step (without generation) | wst ÷ TRL | wst peak RSS | TRL peak RSS |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
points = sorted({(r["tokens"], r["num_generations"]) for r in rows}, key=lambda p: (p[1] != 8, p[1], p[0]))
by = {(r["peer"], r["tokens"], r["num_generations"]): r for r in rows}
for t, g in points:
    w, p = by.get(("wst", t, g)), by.get(("TRL", t, g))
    if not (w and p):
        continue
    print(f"| {t} | {g} | {w['total_tokens']:,} | {w['step_s']:.1f} s | {p['step_s']:.1f} s | {w['step_s'] / p['step_s']:.2f} | {w['peak_gb']:.2f} GB | {p['peak_gb']:.2f} GB |")

fig, axes = plt.subplots(2, 2, figsize=(11, 8))
for col, (label, pick, xkey) in enumerate([("completion length (G = 8)", lambda r: r["num_generations"] == 8, "tokens"), ("G (128 tokens)", lambda r: r["tokens"] == 128, "num_generations")]):
    for peer, style in [("wst", "o-"), ("TRL", "s--")]:
        pts = sorted((r[xkey], r["step_s"], r["peak_gb"], r["total_tokens"]) for r in rows if r["peer"] == peer and pick(r))
        if not pts:
            continue
        x = [p[0] for p in pts]
        axes[0][col].plot(x, [p[1] for p in pts], style, label=peer)
        axes[1][col].plot(x, [p[2] for p in pts], style, label=peer)
        marginal = [f"{(q[1] - p[1]) * 1000 / (q[3] - p[3]):.1f} ms, {(q[2] - p[2]) * 1024 / (q[3] - p[3]):.2f} MB" for p, q in zip(pts, pts[1:])]
        print(f"{peer}, {label}: per added token, {' -> '.join(str(p[0]) for p in pts)}: " + "; ".join(marginal))
    axes[0][col].set(xlabel=label, ylabel="GRPO step (s, without sampling)")
    axes[1][col].set(xlabel=label, ylabel="peak RSS (GB)")
    for ax in (axes[0][col], axes[1][col]):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_ylim(bottom=0)
fig.suptitle("One GRPO step of SmolLM2-135M-Instruct, full fine-tuning, 1 prompt, 2 threads")
fig.tight_layout()
fig.savefig(f"{out}.svg")
print(f"wrote {out}.svg")
