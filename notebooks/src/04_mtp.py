# %% [markdown]
# # 4. Multi-token prediction
#
# DeepSeek-V3 (§2.2, Eq. 21-25) adds D sequential modules that predict further ahead: module k combines the
# main model's hidden state at position i with the embedding of token i+k, runs one transformer block, and
# predicts token i+k+1 through the shared output head. Its cross-entropy, weighted by lambda / D, is added to the
# training loss. At inference the module can draft the token after next, which the main model then verifies:
# self-speculative decoding, whose output equals plain greedy decoding exactly.
#
# Source files: `tinyds/model/mtp.cpp` (forward and backward of the modules), `tinyds/model/speculative.h`
# (draft, verify, accept), `tinyds/model/decoder.h` (`mtp_step`).

# %%
import os
import matplotlib.pyplot as plt
import numpy as np

# One OpenMP thread: nano-sized matrices are too small for a second thread to pay for its synchronisation.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402

cfg = tinyds.Config.preset("nano")  # mtp_depth 1, lambda 0.3
cfg.model.max_seq_len = 128  # a level-1 problem is up to ~105 tokens
cfg.train.steps, cfg.train.lr, cfg.train.warmup_steps = 400, 3e-3, 20
print(f"mtp_depth {cfg.model.mtp_depth}, mtp_lambda {cfg.model.mtp_lambda}")
model = tinyds.Model(cfg, seed=1)
train = tinyds.generate_problems(1, 4000, seed=1)
prompts = [tinyds.prompt_tokens(p) for p in tinyds.generate_problems(1, 12, seed=3, split="test")]


def acceptance(model):
    """Greedy self-speculative decoding of every prompt: accepted drafts / proposed drafts, and on how many prompts
    the output equals plain greedy decoding (all of them, unless two logits tie within fp32 rounding)."""
    proposed = accepted = same = 0
    for p in prompts:
        spec = model.speculative_decode(p, max_new_tokens=40)
        same += spec["tokens"] == model.greedy_decode(p, max_new_tokens=40)["tokens"]
        proposed, accepted = proposed + spec["proposed"], accepted + spec["accepted"]
    print(f"step {model.steps:3d}: acceptance {100 * accepted / max(proposed, 1):4.1f}%, "
          f"identical to greedy on {same}/{len(prompts)} prompts")
    return accepted / max(proposed, 1)

# %% [markdown]
# ## The MTP loss beside the main loss
# `train_step` reports both parts of the objective: `main_loss` (next token) and `mtp_loss` (lambda times the
# cross-entropy of the token after next). Every 50 steps, the drafts' acceptance rate on 12 held-out prompts.

# %%
main, mtp, acc_steps, acc = [], [], [0], [acceptance(model)]
for step in range(cfg.train.steps):
    rows = train[(8 * step) % 3992:(8 * step) % 3992 + 8]
    r = model.train_step(*tinyds.make_batch(rows, max_T=112))
    main.append(r["main_loss"])
    mtp.append(r["mtp_loss"] / cfg.model.mtp_lambda)  # undo lambda: the module's own cross-entropy
    if (step + 1) % 50 == 0:
        acc_steps.append(step + 1)
        acc.append(acceptance(model))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(main, lw=0.8, label="main: next token")
axes[0].plot(mtp, lw=0.8, label="MTP module: token after next")
axes[0].set_xlabel("step")
axes[0].set_ylabel("cross-entropy (nats)")
axes[0].legend()
axes[1].plot(acc_steps, np.array(acc) * 100, "o-")
axes[1].set_xlabel("step")
axes[1].set_ylabel("draft acceptance rate (%)")
axes[1].set_ylim(0, 100)
plt.tight_layout()
print(f"last 50 steps: main {np.mean(main[-50:]):.3f}, MTP {np.mean(mtp[-50:]):.3f} nats;"
      f" acceptance {100 * acc[0]:.0f}% at init -> {100 * acc[-1]:.0f}% after {cfg.train.steps} steps")

# %% [markdown]
# ## One speculative decode, step by step
# Each round the MTP module drafts one token, the main model checks the pair in one call; an accepted draft gives
# two tokens for one main-model call.

# %%
p = prompts[0]
spec = model.speculative_decode(p, max_new_tokens=40)
plain = model.greedy_decode(p, max_new_tokens=40)
tok = model.tokenizer
print(tok.decode(p[1:]) + tok.decode(spec["tokens"]))
print(f"identical to plain greedy: {spec['tokens'] == plain['tokens']}")
print(f"{len(spec['tokens'])} tokens: {spec['main_calls']} main-model calls (plain greedy: {plain['main_calls']}), "
      f"{spec['accepted']}/{spec['proposed']} drafts accepted")

# %% [markdown]
# What to notice: the token after next is harder to predict, so the MTP loss stays above the main loss, yet it
# falls with it — the module learns from the same hidden states. The acceptance rate is not a quality measure: a
# model that repeats one character early in training is trivially easy to draft for (rates near 100%), it drops
# when the completions start to vary, and rises again as both learn the answers' regular format (digits, `<<`,
# `=`, `####`); V3 reports 85-90% for its second token. Whatever the rate, the decoded text equals greedy
# decoding: a rejected draft only costs time.
