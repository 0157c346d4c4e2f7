# %% [markdown]
# # 5. SFT, distillation, reward model, DPO: four losses on the same pairs
#
# Post-training in tinyds works on per-token log-probabilities `lp` of given tokens (`posttrain/logprobs.h`):
# every loss takes `lp` (or logits) and returns its gradient, which `logprobs_backward` turns into a gradient of
# the logits and `Model.backward_from_logits` carries into the model. Here the four losses of DESIGN §6 meet the
# same preference pairs: a right worked solution (chosen) and the same solution with a wrong final number
# (rejected), as `tinyds rm` and `tinyds dpo` build them with `--rejected corrupted` (`posttrain/preference.h`).
#
# Source files: `tinyds/posttrain/losses/` (`sft.cpp`, `distill.cpp`, `reward_model.cpp`, `dpo.cpp`,
# `logprobs.cpp`), `tinyds/posttrain/critic.h` (the reward model's scalar head), `preference.h`; the trainers
# `dpo_trainer.cpp`, `reward_model_trainer.cpp`, `distill_trainer.cpp`.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

# One OpenMP thread: nano-sized matrices are too small for a second thread to pay for its synchronisation.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402

L = tinyds.losses
V = tinyds.Config.preset("nano").model.vocab_size


def pair_batch(problems, seed):
    """Pair rows as `tinyds rm --rejected corrupted` builds them (`final` corruption: the number after #### made wrong),
    and their batch: rows [0, P) chosen, [P, 2P) rejected."""
    rows = tinyds.preference_rows(problems, corruption="final", seed=seed)
    tokens, targets = tinyds.make_batch(rows, max_T=112)
    return rows, tokens, targets, (targets >= 0).astype(np.float32)


def token_logprobs(model, tokens, targets):
    """lp (B, T) of the target tokens under the model, and its logits (B, T, V)."""
    model.forward(tokens)
    logits = model.logits
    lp = L.logprobs(logits.reshape(-1, V), targets.reshape(-1)).reshape(targets.shape)
    return lp, logits


P = 16
pair_rows, tokens, targets, mask = pair_batch(tinyds.generate_problems(1, P, seed=7), seed=7)
held_pair_rows, held_tokens, held_targets, held_mask = pair_batch(
    tinyds.generate_problems(1, P, seed=8, split="test"), seed=8)
print("chosen:  ", tinyds.Tokenizer().decode([t for t in targets[0] if t >= 0]))
print("rejected:", tinyds.Tokenizer().decode([t for t in targets[P] if t >= 0]))

# %% [markdown]
# ## A policy from SFT
# A nano model fine-tuned for 300 steps on level-1 problems (prompt masked): this is the policy DPO starts from,
# the frozen reference, and the teacher for distillation.

# %%
cfg = tinyds.Config.preset("nano")
cfg.model.max_seq_len = 128  # a level-1 problem is up to ~105 tokens
cfg.train.steps, cfg.train.lr, cfg.train.warmup_steps = 300, 3e-3, 20
policy = tinyds.Model(cfg, seed=1)
train = tinyds.generate_problems(1, 2400, seed=1)
for step in range(cfg.train.steps):
    policy.train_step(*tinyds.make_batch(train[8 * step:8 * step + 8], max_T=112))
ckpt = os.path.join(tempfile.mkdtemp(), "sft.safetensors")
policy.save(ckpt)
reference = tinyds.Model.load(ckpt)  # frozen copy
fresh = tinyds.Model(cfg, seed=2)

# %% [markdown]
# ## The four losses on the same pairs, for an untrained model and the SFT model
# - **SFT**: mean `-lp` over the chosen completions' tokens.
# - **Distillation** (Hinton et al.): `alpha T² KL(teacher_T || student_T) + (1 - alpha) CE` on the chosen
#   completions, the SFT model as teacher (so its own KL term is 0).
# - **Reward model** (Bradley-Terry): `-log sigmoid(r_w - r_l)`; here the score `r` of a completion is the model's
#   summed log-prob, a stand-in for a trained scalar head (the next section trains one, as `tinyds rm` does).
# - **DPO**: `-log sigmoid(beta [(lp_w - lpref_w) - (lp_l - lpref_l)])`, the SFT model as reference. At the start
#   policy = reference, so the loss is log 2 for any pair.

# %%
lp_ref, teacher_logits = token_logprobs(reference, tokens, targets)
rows = {}
for name, model in (("untrained", fresh), ("SFT", policy)):
    lp, logits = token_logprobs(model, tokens, targets)
    sft, _ = L.sft(lp[:P], mask[:P])
    dist, _ = L.distill(logits[:P].reshape(-1, V), teacher_logits[:P].reshape(-1, V), targets[:P].reshape(-1),
                        alpha=0.5, temperature=2.0)
    seq = (lp * mask).sum(1)
    rm, _, _ = L.reward_model(seq[:P], seq[P:])
    dpo, _, _ = L.dpo(lp[:P], lp_ref[:P], mask[:P], lp[P:], lp_ref[P:], mask[P:], beta=0.1)
    rows[name] = {"SFT": sft, "distill": dist["loss"], "reward model": rm["loss"], "DPO": dpo["loss"]}
    print(f"{name:9s} " + "  ".join(f"{k} {v:.3f}" for k, v in rows[name].items()) +
          f"   (RM pair accuracy {rm['accuracy']:.2f})")
x = np.arange(4)
plt.figure(figsize=(7, 3.2))
for i, (name, r) in enumerate(rows.items()):
    plt.bar(x + 0.4 * i, list(r.values()), width=0.4, label=name)
plt.xticks(x + 0.2, list(rows["SFT"].keys()))
plt.ylabel("loss")
plt.legend()
plt.tight_layout()

# %% [markdown]
# ## A reward model: a scalar head on the last token
# `tinyds rm` (`posttrain/reward_model_trainer.cpp`) trains a separate model: the SFT policy's trunk and a scalar
# head, `r = x_L[last] . w + b`, read at each row's last completion position (the state that has read the whole
# answer and predicts `<eos>`; `posttrain/critic.h` under `Role::reward`). The head starts at zero, so every
# reward is 0 and the loss log 2. `tinyds.RewardModel.train_step` is one of its steps: the Bradley-Terry loss of
# the pair rows, its gradient into the head and the whole trunk, a gradient-norm clip at 1 and AdamW. Here 40
# steps on the same 16 pairs, with the held-out pairs scored after each step.

# %%
reward_model = tinyds.RewardModel.from_checkpoint(ckpt)  # trunk = the SFT policy, head zero (`tinyds rm --init`)
rm_hist = {k: [] for k in ("accuracy", "margin", "held_accuracy", "held_margin")}
for step in range(40):
    st = reward_model.train_step(pair_rows, lr=1e-3)  # stats of the pairs before this step's update
    held_r = reward_model.score(held_pair_rows)
    for k, v in (("accuracy", st["accuracy"]), ("margin", st["margin"]),
                 ("held_accuracy", np.mean(held_r[:P] > held_r[P:])), ("held_margin", np.mean(held_r[:P] - held_r[P:]))):
        rm_hist[k].append(v)
r_train = reward_model.score(pair_rows)
print(f"after {reward_model.steps} steps: training pairs accuracy {np.mean(r_train[:P] > r_train[P:]):.2f}, mean margin "
      f"{np.mean(r_train[:P] - r_train[P:]):+.2f};  held-out pairs accuracy {rm_hist['held_accuracy'][-1]:.2f}, "
      f"mean margin {rm_hist['held_margin'][-1]:+.2f}")
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
axes[0].plot(rm_hist["margin"], label="training pairs")
axes[0].plot(rm_hist["held_margin"], label="held-out pairs")
axes[0].set_title("mean margin r(chosen) - r(rejected)")
axes[0].legend(fontsize=8)
axes[1].plot(rm_hist["accuracy"], label="training pairs")
axes[1].plot(rm_hist["held_accuracy"], label="held-out pairs")
axes[1].set_title("pairs with r(chosen) > r(rejected)")
axes[1].set_ylim(0, 1.05)
axes[1].legend(fontsize=8)
for ax in axes[:2]:
    ax.set_xlabel("step")
for r, name in ((r_train, "training pairs"), (held_r, "held-out pairs")):
    axes[2].scatter(r[P:], r[:P], s=14, label=name)
lim = [min(r_train.min(), held_r.min()), max(r_train.max(), held_r.max())]
axes[2].plot(lim, lim, color="gray", ls=":")
axes[2].set_xlabel("r(rejected)")
axes[2].set_ylabel("r(chosen)")
axes[2].set_title("rewards after training (above the line: right)")
axes[2].legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# ## DPO for 60 steps
# Each step: log-probs of all 2P rows, the DPO loss and its gradient `dlp` (`L.dpo`), `dlogits` through
# `logprobs_backward`, `backward_from_logits`, and one AdamW step. trl's reported rewards are
# `beta (s_w - s_ref_w)` (chosen) and `beta (s_l - s_ref_l)` (rejected); their difference is the margin.

# %%
hist = {k: [] for k in ("loss", "chosen", "rejected", "margin", "held_margin", "held_accuracy")}
for step in range(60):
    policy.zero_grad()
    lp, logits = token_logprobs(policy, tokens, targets)
    st, dlp_w, dlp_l = L.dpo(lp[:P], lp_ref[:P], mask[:P], lp[P:], lp_ref[P:], mask[P:], beta=0.1)
    dlp = np.concatenate([dlp_w, dlp_l])
    dlogits = L.logprobs_backward(dlp.reshape(-1), logits.reshape(-1, V), targets.reshape(-1))
    policy.backward_from_logits(dlogits)
    policy.step(lr=1e-3)
    lp_h, _ = token_logprobs(policy, held_tokens, held_targets)
    ref_h, _ = token_logprobs(reference, held_tokens, held_targets)
    held, _, _ = L.dpo(lp_h[:P], ref_h[:P], held_mask[:P], lp_h[P:], ref_h[P:], held_mask[P:], beta=0.1)
    for k, v in (("loss", st["loss"]), ("chosen", st["rewards_chosen"]), ("rejected", st["rewards_rejected"]),
                 ("margin", st["rewards_margin"]), ("held_margin", held["rewards_margin"]),
                 ("held_accuracy", held["rewards_accuracy"])):
        hist[k].append(v)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.3))
axes[0].plot(hist["loss"])
axes[0].axhline(np.log(2), color="gray", ls=":", label="log 2")
axes[0].set_title("DPO loss")
axes[0].legend()
for k in ("chosen", "rejected", "margin", "held_margin"):
    axes[1].plot(hist[k], label=k)
axes[1].set_title("rewards (beta * log-ratio to the reference)")
axes[1].legend(fontsize=8)
axes[2].plot(hist["held_accuracy"])
axes[2].set_title("held-out pairs: chosen > rejected")
axes[2].set_ylim(0, 1.05)
for ax in axes:
    ax.set_xlabel("step")
plt.tight_layout()

# %% [markdown]
# What to notice: SFT, distillation and DPO read the same `lp`; only the aggregation differs. DPO starts at log 2
# (policy = reference) and the margin grows mostly by pushing the rejected completions down — the rewards of the
# chosen ones often fall too, the well-known DPO behaviour. The pairs differ only in the last number, so the
# margin lives on a few tokens; the held-out margin tells whether the model learnt "the right number" or these
# pairs. The reward model shows the same question more starkly: its head and trunk fit 16 pairs within a few dozen
# steps (training margins of several nats) while the held-out pairs stay near chance — a nano trunk after 300 SFT
# steps has no feature for "this final number follows from the line above", and a reward model can only rank by
# the features its trunk has.
