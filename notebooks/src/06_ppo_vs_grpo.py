# %% [markdown]
# # 6. PPO vs GRPO
#
# Both optimise a policy against a reward with a clipped ratio `exp(lp - lp_old)`. They differ in where the
# advantage comes from. **PPO** learns a critic `V` (a second model of the same size, with its own optimizer) and
# computes per-token advantages by GAE from per-token rewards (a KL penalty to the reference, plus the score at the
# last token). **GRPO** samples G completions per prompt and uses the group's normalised rewards as every
# token's advantage: no critic. This notebook shows the group advantages on a real batch, GAE on one sequence,
# short runs of both trainers, and where each one's memory goes.
#
# Source files: `tinyds/posttrain/grpo.cpp` (advantages, loss), `gae.cpp`, `ppo.cpp`, `reward.cpp` (rule-based
# rewards), the trainers `grpo_trainer.cpp`, `ppo_trainer.cpp`, and `memory.cpp` (`tinyds memory`).

# %%
import json
import os
import subprocess
import tempfile

import matplotlib.pyplot as plt
import numpy as np

# One OpenMP thread: nano-sized matrices are too small for a second thread to pay for its synchronisation.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402

L = tinyds.losses
EXE = os.environ.get("TINYDS_EXE") or os.path.join(os.path.dirname(tinyds.__file__), "..", "tinyds")
work = tempfile.mkdtemp()

# A nano policy after 400 SFT steps: it writes the answer format but rarely the right number.
cfg = tinyds.Config.preset("nano")
cfg.model.max_seq_len = 128  # a level-1 problem is up to ~105 tokens
cfg.train.steps, cfg.train.lr, cfg.train.warmup_steps = 400, 3e-3, 20
policy = tinyds.Model(cfg, seed=1)
train = tinyds.generate_problems(1, 3200, seed=1)
for step in range(cfg.train.steps):
    policy.train_step(*tinyds.make_batch(train[8 * step:8 * step + 8], max_T=112))
ckpt = os.path.join(work, "sft.safetensors")
policy.save(ckpt)

# %% [markdown]
# ## Group advantages on a real batch
# 4 prompts, G = 8 completions each sampled at temperature 1, scored by the rule-based reward (accuracy + format,
# `posttrain/reward.h`); `A_i = (R_i - mean(R)) / (std(R) + 1e-4)` within each group.

# %%
G = 8
problems = tinyds.generate_problems(1, 4, seed=21)
prompts = [tinyds.prompt_tokens(p) for p in problems for _ in range(G)]
completions = policy.generate(prompts, temperature=1.0, max_new_tokens=48, seed=3)
scores = [tinyds.score_completion(c, p["final_answer"]) for c, p in zip(completions, [p for p in problems for _ in range(G)])]
rewards = np.array([s["total"] for s in scores], np.float32)
adv, stats = L.grpo_advantages(rewards, G)
print(stats)
fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
for ax, data, title in ((axes[0], rewards, "reward (accuracy + format)"), (axes[1], adv, "GRPO advantage")):
    im = ax.imshow(data.reshape(-1, G), cmap="coolwarm", vmin=-2 if data is adv else 0, vmax=2)
    for (i, j), v in np.ndenumerate(data.reshape(-1, G)):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel("completion in group")
    ax.set_ylabel("prompt")
plt.tight_layout()
print("one completion:", repr(policy.tokenizer.decode(completions[0])))

# %% [markdown]
# A group whose rewards are all equal has advantage 0 everywhere: no gradient (DAPO's dynamic sampling skips such
# groups). The others push up the better completions and down the worse, relative to their siblings.
#
# ## GAE on one sequence
# PPO's per-token rewards: `-kl_coef (lp_old - lp_ref)` on every token, plus the score on the last one. With a
# critic's values `V_t`, `delta_t = r_t + gamma V_{t+1} - V_t` and `A_t = delta_t + gamma lambda A_{t+1}`. The
# reference is the policy before the last 200 SFT steps; the values are those of an untrained critic (0.5 for
# every token), so the picture shows how lambda spreads the final score back over the tokens.

# %%
i = int(np.argmax(rewards))
seq = prompts[i] + completions[i]
tokens = np.array([seq[:-1]], np.int32)
targets = np.array([seq[1:]], np.int32)
targets[0, :len(prompts[i]) - 1] = -1  # the prompt is not an action
V = cfg.model.vocab_size
ref = tinyds.Model(cfg, seed=1)  # the same run as the policy's, stopped after 200 steps
for step in range(200):
    ref.train_step(*tinyds.make_batch(train[8 * step:8 * step + 8], max_T=112))


def logprobs(model):
    model.forward(tokens)
    return L.logprobs(model.logits.reshape(-1, V), targets.reshape(-1)).reshape(targets.shape)


mask = (targets >= 0).astype(np.float32)
lp_old, lp_ref = logprobs(policy), logprobs(ref)
r = L.ppo_rewards(lp_old, lp_ref, np.array([rewards[i]], np.float32), mask, kl_coef=0.05)
values = 0.5 * mask
fig, ax = plt.subplots(figsize=(10, 3.5))
pos = np.arange(mask.shape[1])[mask[0] > 0]
ax.bar(pos, r[0, pos], color="gray", alpha=0.5, label="reward r_t")
for lam in (0.0, 0.95, 1.0):
    a, ret = L.gae(r, values, mask, gamma=1.0, lam=lam)
    ax.plot(pos, a[0, pos], "o-", ms=3, label=f"advantage, lambda {lam}")
ax.set_xlabel("position (completion tokens)")
ax.legend(fontsize=8)
ax.set_title(f"one completion, score {rewards[i]:.0f}: {policy.tokenizer.decode(completions[i])!r}"[:110], fontsize=9)
plt.tight_layout()

# %% [markdown]
# lambda = 0 uses one step of the critic (`delta_t` alone: the score reaches only the last token); lambda = 1 is
# the Monte-Carlo return minus V (every token sees the score). GRPO's advantage is the lambda = 1 picture with the
# group mean in place of V, the same number on every token.
#
# ## Short runs of both trainers
# `tinyds grpo` and `tinyds ppo` from the same SFT checkpoint, 12 steps of 32 sampled completions each (GRPO: 4
# prompts x 8; PPO: 32 prompts x 1), read from their `metrics.jsonl`. Both without their default SFT term
# (`--ptx-coef 0`): the curves show each RL objective alone.

# %%
def run(cmd, out):
    r = subprocess.run([EXE, *cmd, "--init", ckpt, "--out", out, "--eval-problems", "0", "--quiet"], check=True,
                       capture_output=True, text=True)
    print(r.stdout.strip().split("\n")[-1])  # the trainer's summary line
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if '"reward_mean"' in line]


grpo = run(["grpo", "--steps", "12", "--prompts-per-step", "4", "--num-generations", "8",
            "--max-completion-length", "48", "--lr", "1e-4", "--ptx-coef", "0"], os.path.join(work, "grpo"))
ppo = run(["ppo", "--steps", "12", "--batch-size", "32", "--response-length", "48", "--learning-rate", "1e-4",
           "--ptx-coef", "0"], os.path.join(work, "ppo"))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
for name, recs in (("GRPO", grpo), ("PPO", ppo)):
    axes[0].plot([m["step"] for m in recs], [m["reward_mean"] for m in recs], "o-", label=name)
    axes[1].plot([m["step"] for m in recs], [100 * m["accuracy"] for m in recs], "o-", label=name)
axes[0].set_ylabel("mean reward of the sampled batch")
axes[1].set_ylabel("sampled accuracy (%)")
for ax in axes:
    ax.set_xlabel("RL step")
    ax.legend()
plt.tight_layout()

# %% [markdown]
# A dozen steps on a nano model move the reward little (the curves are mostly sampling noise): the course's
# R1-Zero notebook (coming) shows longer runs on the `small` model. What differs already is the cost, next.
#
# ## Where the memory goes
# `tinyds.measure_memory` runs one step of each method as `tinyds memory` does (same policy, same sampled tokens
# for PPO and GRPO) and reads the ledger: peak bytes per (role, category).

# %%
ms = tinyds.measure_memory(cfg, prompts=2, num_generations=4, response_length=32)
roles, cats = tinyds.ROLES, tinyds.CATEGORIES
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for ax, axis, labels, title in ((axes[0], 1, roles, "by role"), (axes[1], 0, cats, "by category")):
    bottom = np.zeros(len(ms))
    for k, label in enumerate(labels):
        vals = np.array([m.peak.sum(axis=axis)[k] for m in ms]) / 1024
        if vals.any():
            ax.bar([m.method for m in ms], vals, bottom=bottom, label=label)
            bottom += vals
    ax.set_ylabel("KiB (sum of cell peaks)")
    ax.set_title(title)
    ax.legend(fontsize=8)
plt.tight_layout()

state = [cats.index(c) for c in ("weights", "grads", "adam_m", "adam_v")]
print(f"{'method':8s} {'state measured':>15s} {'predicted':>10s}   roles holding state")
for m in ms:
    meas, pred = m.peak[:, state].sum(), m.predicted[:, state].sum()
    holders = [roles[r] for r in range(len(roles)) if m.peak[r, state].sum()]
    print(f"{m.method:8s} {meas:15d} {pred:10d}   {', '.join(holders)}")
print()
print(tinyds.memory_report(ms))

# %% [markdown]
# What to notice: the model-state cells (weights, gradients, Adam moments) are exactly the analytic prediction
# (4 bytes per parameter each; frozen models hold weights only). PPO's critic is a second trainable model: its
# weights, gradients and both Adam moments are what GRPO saves; GRPO pays instead for G completions per prompt in
# rollout buffers and activations. At nano size the activations dominate; at the scale of real models the model
# state does, which is why GRPO's saving matters.
