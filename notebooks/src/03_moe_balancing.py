# %% [markdown]
# # 3. MoE routing and load balancing
#
# A fine-grained MoE layer (DeepSeekMoE; V3 §2.1.2) sends each token to K of E routed experts plus the shared
# expert(s). The router scores `s = sigmoid(u · e_i)`; the experts are chosen by `s + b` (top-K), and the chosen
# experts are weighted by their **unbiased** scores `s`, normalised. The bias `b` is moved after each optimizer
# step, `b_i += gamma * sign(mean(load) - load_i)` (auxiliary-loss-free balancing): it changes which experts are
# chosen, never how much they weigh, and carries no gradient. This notebook trains the same small model three
# ways — no balancing, the classic auxiliary loss, the bias update — and watches the loads.
#
# Source files: `tinyds/ops/moe_router.cpp` (scores, biased top-K, weights), `tinyds/model/moe_layer.h`
# (dispatch, experts, combine), `tinyds/ops/moe_balance.cpp` (bias update, MaxVio, balance losses).

# %%
import os
import matplotlib.pyplot as plt
import numpy as np

# One OpenMP thread: nano-sized matrices are too small for a second thread to pay for its synchronisation.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402


def moe_config(balance):
    cfg = tinyds.Config.preset("nano")
    m = cfg.model
    m.n_routed_experts, m.n_activated_experts, m.moe_inter_dim = 16, 2, 8  # 16 fine-grained experts, 2 per token
    m.mtp_depth = 0
    m.max_seq_len = 128  # a level-1 problem is up to ~105 tokens
    m.balance = balance
    m.bias_update_speed = 0.01  # gamma: V3 uses 0.001 over far more steps; a short toy run needs a faster bias
    m.aux_alpha = 0.01
    cfg.train.steps, cfg.train.lr, cfg.train.warmup_steps = 250, 3e-3, 10
    return cfg

# %% [markdown]
# ## What the bias does to the choice, and not to the weights
# One forward of a fresh model; then the same batch again with a large bias on expert 0.

# %%
model = tinyds.Model(moe_config("bias"), seed=1)
tokens, targets = tinyds.make_batch(tinyds.generate_problems(1, 8, seed=5), max_T=112)
l = model.moe_layers[0]
model.forward(tokens, targets)
before = model.layer(l)
model.moe_bias[0, 0] = 1.0  # a view: this writes the router bias of the first MoE layer
model.forward(tokens, targets)
after = model.layer(l)
t = (0, 5)  # one token: sequence 0, position 5
print("scores s        ", np.round(before["scores"][t], 3))
print("chosen without b", before["topk_idx"][t], " weights", np.round(before["topk_w"][t], 3))
print("chosen with b_0=1", after["topk_idx"][t], " weights", np.round(after["topk_w"][t], 3))
w0 = after["topk_w"][t][list(after["topk_idx"][t]).index(0)]
s = after["scores"][t]
print(f"expert 0's weight {w0:.3f} = s_0 / (s of the chosen) = {s[0] / s[after['topk_idx'][t]].sum():.3f}: "
      "the bias chose it, its own score weighs it")
print(f"tokens sent to expert 0: {model.moe_load()[0][0]} of {tokens.size} (before: {np.sum(before['topk_idx'] == 0)})")
model.moe_bias[0, 0] = 0.0

# %% [markdown]
# ## Three ways to train
# The same model, data and seed with `balance` none, aux (the DeepSeekMoE expert-level loss, alpha 0.01) and bias.
# Each step records the tokens routed to each expert of the first MoE layer and its MaxVio
# (`max load / mean load - 1`, the Loss-Free Balancing paper's metric).

# %%
train = tinyds.generate_problems(1, 2000, seed=1)
runs = {}
for balance in ("none", "aux", "bias"):
    cfg = moe_config(balance)
    model = tinyds.Model(cfg, seed=1)
    loads, maxvio, losses = [], [], []
    for step in range(cfg.train.steps):
        rows = train[(8 * step) % 1992:(8 * step) % 1992 + 8]
        r = model.train_step(*tinyds.make_batch(rows, max_T=112))
        loads.append(r["load"][0])
        maxvio.append(r["maxvio"][0])
        losses.append(r["main_loss"])
    runs[balance] = dict(loads=np.array(loads), maxvio=np.array(maxvio), loss=np.array(losses),
                         bias=model.moe_bias[0].copy())
    print(f"{balance:5s}: mean MaxVio over the last 50 steps {runs[balance]['maxvio'][-50:].mean():.2f}, "
          f"main loss {runs[balance]['loss'][-50:].mean():.3f}")

# %%
fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
for ax, (balance, r) in zip(axes, runs.items()):
    share = r["loads"] / r["loads"].sum(1, keepdims=True)
    im = ax.imshow(share.T, aspect="auto", cmap="magma", vmin=0, vmax=0.25, interpolation="nearest")
    ax.set_ylabel("expert")
    ax.set_title(f"balance = {balance}: share of routed (token, slot) pairs per expert")
axes[-1].set_xlabel("step")
fig.colorbar(im, ax=axes, shrink=0.6, label="share (uniform = 1/16)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for balance, r in runs.items():
    smooth = np.convolve(r["maxvio"], np.ones(10) / 10, mode="valid")
    axes[0].plot(smooth, label=balance)
    axes[1].plot(np.convolve(r["loss"], np.ones(10) / 10, mode="valid"), label=balance)
axes[0].set_ylabel("MaxVio (10-step mean)")
axes[1].set_ylabel("main loss (10-step mean)")
for ax in axes:
    ax.set_xlabel("step")
    ax.legend()
plt.tight_layout()
print("router bias after training with balance = bias:", np.round(runs["bias"]["bias"], 3))

# %% [markdown]
# What to notice: without balancing a few experts take most tokens (bright rows) and MaxVio stays high; the
# auxiliary loss evens the loads by adding a gradient to the router, which competes with the language-model loss;
# the bias update evens them without any gradient: overloaded experts get a negative bias, underloaded ones a
# positive one, and the weights of the chosen experts remain the router's own scores. On a toy model and a few
# hundred steps the loss curves differ little; V3 reports the bias method's advantage at scale.
