#!/usr/bin/python3
"""tests/python/test_bindings_losses.py — tinyds.losses against the PyTorch reference values.

    PYTHONPATH=build/python /usr/bin/python3 tests/python/test_bindings_losses.py build/golden/posttrain_losses.safetensors

The file is written by tests/reference/posttrain_losses.py (float64 formulas and autograd, independent of the
C++); the C++ suite posttrain_golden checks the double instantiations of the same functions against it to 1e-10.
Here the binding's float32 path (the trainers' precision) is checked: its inputs are rounded to float32 and it
computes in float32 (with double accumulators where the C++ has them), so each value carries a relative error of
a few float32 epsilons (6e-8) per operation over chains of < 100 operations on values of size <= ~10.
Tolerance: max |binding - torch| <= 2e-5 * max(max |torch|, 1) — about 30x that bound's typical size, while a
formula difference (a wrong denominator, a missing beta, a flipped clip bound, biased vs unbiased std) changes
results by >= 1e-3 relative. Clip fractions are counts over <= 42 tokens: none of the reference's ratios lies
within 1e-4 of a clip bound (checked below), so float32 rounding cannot flip one, and they must match exactly.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from safetensors_io import read_safetensors  # noqa: E402

import tinyds  # noqa: E402

TOL = 2e-5
G, META = read_safetensors(sys.argv[1])
L = tinyds.losses
checked = []


def meta(key):
    return float(META[key])


def compare(what, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64).reshape(np.shape(got))
    err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1.0)
    assert err <= TOL, f"{what}: scaled max error {err:.3g} > {TOL}"
    checked.append(what)


def f32(name):
    return G[name].astype(np.float32)


# logprobs and SFT (at temperature 1 for SFT, as the reference)
logits, targets = f32("lp.logits"), G["lp.targets"]
compare("lp", L.logprobs(logits, targets, meta("temperature")), G["lp.lp"])
compare("lp.dlogits", L.logprobs_backward(f32("lp.R"), logits, targets, meta("temperature")), G["lp.dlogits"])
mask = (targets >= 0).astype(np.float32)
sft_loss, dlp = L.sft(L.logprobs(logits, targets), mask)
compare("sft.loss", sft_loss, G["sft.loss"])
compare("sft.dlogits", L.logprobs_backward(dlp, logits, targets), G["sft.dlogits"])

# KL estimators (the reference's dlp is d(sum R * k)/dlp; the binding returns dk/dlp)
for k in ("k1", "k2", "k3"):
    kl, dkl = L.kl(f32("kl.lp"), f32("kl.lp_ref"), k)
    compare(f"kl.{k}", kl, G[f"kl.{k}"])
    compare(f"kl.dlp_{k}", dkl * f32("kl.R"), G[f"kl.dlp_{k}"])

# distillation, both divergences
for name, div in (("fwd", "forward_kl"), ("rev", "reverse_kl")):
    st, d = L.distill(f32("distill.student"), f32("distill.teacher"), G["distill.targets"],
                      alpha=meta("distill_alpha"), temperature=meta("distill_temperature"), divergence=div)
    compare(f"distill.{name}.loss", st["loss"], G[f"distill.{name}.loss"])
    compare(f"distill.{name}.dstudent", d, G[f"distill.{name}.dstudent"])

# reward model
st, dw, dl = L.reward_model(f32("rm.r_w"), f32("rm.r_l"))
compare("rm.loss", st["loss"], G["rm.loss"])
compare("rm.dr_w", dw, G["rm.dr_w"])
compare("rm.dr_l", dl, G["rm.dr_l"])

# DPO: sigmoid, length-normalised, IPO
dpo_in = [f32(f"dpo.{n}") for n in ("lp_w", "lp_ref_w", "mask_w", "lp_l", "lp_ref_l", "mask_l")]
for variant in ("sigmoid", "norm", "ipo"):
    st, dw, dl = L.dpo(*dpo_in, beta=meta("dpo_beta"), loss_type="ipo" if variant == "ipo" else "sigmoid",
                       length_normalize=variant == "norm")
    compare(f"dpo.{variant}.loss", st["loss"], G[f"dpo.{variant}.loss"])
    compare(f"dpo.{variant}.margin", st["rewards_margin"], G[f"dpo.{variant}.margin"])
    assert st["rewards_accuracy"] == G[f"dpo.{variant}.accuracy"][0], variant
    compare(f"dpo.{variant}.dlp_w", dw, G[f"dpo.{variant}.dlp_w"])
    compare(f"dpo.{variant}.dlp_l", dl, G[f"dpo.{variant}.dlp_l"])

# PPO: rewards, GAE, whitening, clipped losses
mask = f32("ppo.mask")
rewards = L.ppo_rewards(f32("ppo.lp_old"), f32("ppo.lp_ref"), f32("ppo.scores"), mask, kl_coef=meta("ppo_kl_coef"))
compare("ppo.rewards", rewards, G["ppo.rewards"])
adv, ret = L.gae(rewards, f32("ppo.values_old"), mask, gamma=meta("ppo_gamma"), lam=meta("ppo_lam"))
compare("ppo.advantages", adv, G["ppo.advantages"])
compare("ppo.returns", ret, G["ppo.returns"])
white = L.whiten(adv, mask)
compare("ppo.whitened", white, G["ppo.whitened"])
ratio = np.exp(G["ppo.lp"] - G["ppo.lp_old"])[G["ppo.mask"] > 0]
c = meta("ppo_cliprange")
assert np.min(np.abs(np.concatenate([ratio - (1 - c), ratio - (1 + c)]))) > 1e-4, "a ratio sits on a clip bound"
st, dlp, dv = L.ppo(f32("ppo.lp"), f32("ppo.values"), f32("ppo.lp_old"), f32("ppo.values_old"), white, ret, mask,
                    cliprange=c, cliprange_value=meta("ppo_cliprange_value"), vf_coef=meta("ppo_vf_coef"))
compare("ppo.loss", st["loss"], G["ppo.loss"])
compare("ppo.approxkl", st["approxkl"], G["ppo.approxkl"])
assert st["pg_clipfrac"] == G["ppo.pg_clipfrac"][0], (st["pg_clipfrac"], G["ppo.pg_clipfrac"])
compare("ppo.dlp", dlp, G["ppo.dlp"])
compare("ppo.dvalues", dv, G["ppo.dvalues"])

# GRPO: group advantages, the four aggregations
n_gen = int(meta("grpo_num_generations"))
A, gs = L.grpo_advantages(f32("grpo.rewards"), n_gen)
assert gs["degenerate_groups"] == 1, gs  # the reference builds one group of equal rewards
compare("grpo.advantages", A, G["grpo.advantages"])
for loss_type in ("grpo", "bnpo", "dapo", "dr_grpo"):
    st, dlp = L.grpo(f32("grpo.lp"), f32("grpo.lp_old"), f32("grpo.lp_ref"), A, f32("grpo.mask"), n_gen,
                     beta=meta("grpo_beta"), epsilon=meta("grpo_epsilon"), epsilon_high=meta("grpo_epsilon_high"),
                     loss_type=loss_type, max_completion_length=int(meta("grpo_max_completion_length")))
    compare(f"grpo.{loss_type}.loss", st["loss"], G[f"grpo.{loss_type}.loss"])
    compare("grpo.kl", st["kl"], G["grpo.kl"])
    compare(f"grpo.{loss_type}.dlp", dlp, G[f"grpo.{loss_type}.dlp"])

print(f"ok: {len(checked)} loss values and gradients match the PyTorch reference within {TOL} (scaled)")
