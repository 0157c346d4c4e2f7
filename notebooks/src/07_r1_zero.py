# %% [markdown]
# # 7. R1-Zero in miniature
#
# `tinyds demo` (`make demo`) is DeepSeek-R1-Zero's recipe at toy scale: stage 1 trains the `small` DeepSeek-style
# model (MLA, MoE, MTP) by SFT on level 1, 2 and 4 arithmetic word problems; stage 2 runs GRPO on levels 2-3 with
# rule rewards only (accuracy + format), a KL penalty to the SFT model and dynamic sampling (it trains on the groups
# whose completions are partly right). Level 3 (three steps) is never in the SFT data.
# This notebook reads the demo's artefacts: its curves, pass@k before and after RL, and samples of both checkpoints.
#
# Without a full run (`runs/demo/`), the notebook runs a short demo (48 SFT steps, 2 GRPO steps): it shows the
# mechanics only; the real figures come from `make demo` (the README's results table).
# (In the short run no sample is right, so every GRPO group is degenerate: no gradient, and both checkpoints are one.)
#
# Source files: `tinyds/cli/cmd_demo.cpp` (the two stages and the report), `posttrain/grpo_trainer.cpp`,
# `posttrain/grpo_step.cpp`, `posttrain/losses/grpo.cpp`, `posttrain/reward.cpp`, `train/pass_at_k.cpp`, `tinyds/cli/plot_curves.py` (the curves).

# %%
import os
import subprocess
import sys
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402

# The demo's own reader and plot (one reader of metrics.jsonl for the demo and the notebook).
sys.dont_write_bytecode = True  # importing plot_curves.py must not leave __pycache__ in the source tree
sys.path.insert(0, os.path.join(tinyds.SOURCE_DIR, "tinyds", "cli"))
import plot_curves  # noqa: E402

EXE = os.environ.get("TINYDS_EXE") or os.path.join(os.path.dirname(tinyds.__file__), "..", "tinyds")
FULL = os.path.join(tinyds.SOURCE_DIR, "runs", "demo")
if os.path.exists(os.path.join(FULL, "grpo", "final.safetensors")):
    RUN = FULL
    print(f"reading the full demo's output in {RUN} (make demo)")
else:
    # A short demo: 48 SFT steps on 1000 problems, 2 GRPO steps of 2 prompts x 8 completions, 2 held-out problems
    # per level (pass@8 on both); one OpenMP thread, as CTest runs the notebooks (the SFT stage then trains one
    # model replica; ~20 s of CPU).
    RUN = os.path.join(tempfile.mkdtemp(), "demo")
    cmd = [EXE, "demo", "--steps", "48", "--n-train", "1000", "--grpo-steps", "2", "--prompts-per-step", "2",
           "--eval-problems", "2", "--pass-problems", "2", "--out", RUN]
    start = time.time()
    r = subprocess.run(cmd, check=True, capture_output=True, text=True)
    print(f"no {FULL}: ran a short demo into {RUN} in {time.time() - start:.0f} s (make demo runs the real one)")
    print(r.stdout[r.stdout.index("=" * 16):])  # the demo's result block

# %% [markdown]
# ## The curves
# `plot_curves.draw`, the picture the demo saves as `curves.png`: the SFT loss, held-out greedy exact match per level
# (SFT's checkpoint, then GRPO's; the gray line is GRPO's sampled accuracy), and per GRPO step the mean reward, the
# completion length, the KL to the SFT model and the entropy of the samples.

# %%
fig = plot_curves.draw(RUN, plt)
plt.show()

# %% [markdown]
# ## pass@k before and after RL
# `<out>/pass_at_k.jsonl`: 8 samples per held-out problem at temperature 1 from each checkpoint, pass@k by the
# unbiased estimator (`train/pass_at_k.h`), and the samples' mean length in tokens.

# %%
pk = plot_curves.read_jsonl(os.path.join(RUN, "pass_at_k.jsonl"))
if not pk:
    print(f"{RUN} has no pass_at_k.jsonl (written by tinyds demo since it evaluates pass@k); rerun make demo")
levels = sorted({r["level"] for r in pk})
fig, axes = plt.subplots(1, max(1, len(levels)), figsize=(4 * max(1, len(levels)), 3.2), squeeze=False)
K = len(pk[0]["pass_at"]) if pk else 0
print(f"{'level':6s} {'pass@1 SFT':>11s} {'GRPO':>6s} {f'pass@{K} SFT':>11s} {'GRPO':>6s}  {'tokens SFT':>10s} {'GRPO':>5s}"
      "  problems")
for ax, level in zip(axes[0], levels):
    rec = {r["checkpoint"]: r for r in pk if r["level"] == level}
    for name in ("sft", "grpo"):
        ks = np.arange(1, len(rec[name]["pass_at"]) + 1)
        ax.plot(ks, 100 * np.array(rec[name]["pass_at"]), "o-", label=f"after {name.upper()}")
    ax.set_title(f"level {level}")
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.legend(fontsize=8)
    s, g = rec["sft"]["pass_at"], rec["grpo"]["pass_at"]
    print(f"{level:<6d} {100 * s[0]:10.1f}% {100 * g[0]:5.1f}% {100 * s[-1]:10.1f}% {100 * g[-1]:5.1f}%  "
          f"{rec['sft']['mean_completion_len']:10.1f} {rec['grpo']['mean_completion_len']:5.1f}  {rec['sft']['problems']}")
plt.tight_layout()

# %% [markdown]
# ## The same held-out problems, before and after RL
# Both checkpoints through `tinyds.Model.load`, sampled at temperature 1 with the same seed, on the first held-out
# problem of levels 2 and 3 (the test split the demo evaluates: `heldout_problems` in `train/trainer.cpp`).

# %%
sft = tinyds.Model.load(os.path.join(RUN, "sft", "final.safetensors"))
rl = tinyds.Model.load(os.path.join(RUN, "grpo", "final.safetensors"))
seed = sft.config.train.seed ^ 0x7E57  # heldout_problems' seed
problems = [tinyds.generate_problems(level, 1, seed=seed, split="test")[0] for level in (2, 3)]
N = 4  # samples per problem
prompts = [tinyds.prompt_tokens(p) for p in problems for _ in range(N)]
samples = {name: model.generate(prompts, temperature=1.0, max_new_tokens=96, seed=7)
           for name, model in (("SFT ", sft), ("GRPO", rl))}
for i, p in enumerate(problems):
    print(f"level {p['level']}: {p['question']}   (answer {p['final_answer']})")
    for name, completions in samples.items():
        for c in completions[N * i:N * (i + 1)]:
            ok = tinyds.score_completion(c, p["final_answer"])["accuracy"] > 0
            text = sft.tokenizer.decode(c).replace("\n", " | ")
            print(f"  {name} {'+' if ok else '-'} {len(c):3d} tokens  {text[:100]}")
    print()
steps = [r for r in plot_curves.read_jsonl(os.path.join(RUN, "grpo", "metrics.jsonl")) if "reward_mean" in r]
degenerate = sum(r["degenerate_groups"] for r in steps)
print(f"degenerate groups (all G rewards equal: zero advantage) over the {len(steps)} GRPO steps: "
      f"{degenerate} of {sum(r['num_groups'] for r in steps)}")

# %% [markdown]
# What to look for (in a full run):
# - **RL turns pass@k into pass@1.** GRPO raises the probability of answers the SFT model could already sample:
#   pass@1 can move toward pass@8, while pass@8 itself barely moves: RL sharpens what the model can already sample
#   more than it adds answers it could not.
# - **Completion length on level 3.** R1-Zero's responses grew longer as it learned to reason through harder
#   problems. Compare level 3's length before and after: the README notes that this model answers three-step
#   problems in two steps, which 30 GRPO steps do not change.
# - **KL to the SFT model** stays small (about 0.01 in the runs of `notebooks/EXPERIMENTS.md`): lr 1e-5 and the
#   penalty beta 0.04 keep the policy near the SFT model; a larger rate moved levels 1-2 down.
