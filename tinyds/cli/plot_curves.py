#!/usr/bin/python3
"""tinyds/cli/plot_curves.py -- draws the demo's training curves from its metrics.jsonl files.

Usage: /usr/bin/python3 tinyds/cli/plot_curves.py RUN_DIR [OUT.png]
  RUN_DIR holds sft/metrics.jsonl (one record per SFT step: loss; optional eval records) and grpo/metrics.jsonl
  (one record per GRPO step: reward_mean, accuracy, completion_len, kl, entropy; eval records with eval_level and
  eval_accuracy). Writes OUT.png (default RUN_DIR/curves.png) with six panels over steps: SFT loss, held-out
  accuracy per level, GRPO reward, completion length, KL to the reference, entropy. Exits 2 with a message when
  matplotlib is missing (the demo then says so and goes on). Notebook 7 imports read_jsonl and draw.
"""
import json
import os
import sys


def read_jsonl(path):
    """The records of a metrics.jsonl file ([] when it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def draw(run, plt):
    """The six panels of RUN_DIR's curves as a matplotlib figure (pyplot passed in: main() draws off-screen,
    notebook 7 inline)."""
    sft = read_jsonl(os.path.join(run, "sft", "metrics.jsonl"))
    grpo = read_jsonl(os.path.join(run, "grpo", "metrics.jsonl"))
    sft_steps = [r for r in sft if "loss" in r]
    grpo_steps = [r for r in grpo if "reward_mean" in r]
    sft_last = sft_steps[-1]["step"] if sft_steps else 0  # GRPO steps are drawn after the SFT steps

    fig, ax = plt.subplots(2, 3, figsize=(15, 8))
    ax = ax.ravel()
    ax[0].plot([r["step"] for r in sft_steps], [r["loss"] for r in sft_steps], lw=0.8)
    ax[0].set_title("SFT loss (answer tokens)")
    ax[0].set_yscale("log")

    # Held-out greedy accuracy per level: SFT evaluations at their step, GRPO's at SFT's last step + its step.
    levels = {}
    for r in sft:
        if "eval_level" in r:
            levels.setdefault(r["eval_level"], []).append((r["step"], r["eval_accuracy"]))
    for r in grpo:
        if "eval_level" in r:
            levels.setdefault(r["eval_level"], []).append((sft_last + r["step"], r["eval_accuracy"]))
    for level, pts in sorted(levels.items()):
        ax[1].plot([p[0] for p in pts], [100 * p[1] for p in pts], "o-", label=f"level {level}")
    if grpo_steps:
        ax[1].axvline(sft_last, color="gray", ls=":", lw=1)
        ax[1].plot([sft_last + r["step"] for r in grpo_steps], [100 * r["accuracy"] for r in grpo_steps],
                   lw=0.8, color="gray", label="GRPO sampled accuracy")
    ax[1].set_title("held-out exact match % (greedy)")
    if levels or grpo_steps:
        ax[1].legend(fontsize=8)

    panels = [("reward_mean", "GRPO reward (accuracy + format)"), ("completion_len", "completion length (tokens)"),
              ("kl", "KL to the SFT model (k3)"), ("entropy", "entropy of the samples (nats/token)")]
    for a, (key, title) in zip(ax[2:], panels):
        a.plot([r["step"] for r in grpo_steps], [r.get(key, float("nan")) for r in grpo_steps], lw=0.8)
        a.set_title(title)
        a.set_xlabel("GRPO step")
    ax[0].set_xlabel("SFT step")
    ax[1].set_xlabel("step (SFT, then GRPO)")
    fig.tight_layout()
    return fig


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: plot_curves.py RUN_DIR [OUT.png]")
    run = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(run, "curves.png")
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display: write the file only
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot_curves.py: matplotlib is not installed ({e}); apt-get install python3-matplotlib")
        sys.exit(2)

    fig = draw(run, plt)
    fig.savefig(out, dpi=100)
    print(out)


if __name__ == "__main__":
    main()
