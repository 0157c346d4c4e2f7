#!/usr/bin/python3
"""tests/python/test_bindings_errors.py — how the Python module behaves at its edges.

    PYTHONPATH=build/python /usr/bin/python3 tests/python/test_bindings_errors.py

  1. tinyds's errors raise tinyds.Error (a RuntimeError) carrying tinyds's message;
  2. parameters and gradients are zero-copy views: writing a parameter changes the next forward, and a view keeps
     its model alive;
  3. the gradients by name agree with central finite differences of the float64 model (Model64);
  4. the internals a notebook shows are consistent with each other: the chosen experts are the top-K of
     scores + bias, the loads count them, MaxVio follows from the loads, attention rows sum to 1.
"""
import gc

import numpy as np

import tinyds


def raises(fn, *needles):
    try:
        fn()
    except tinyds.Error as e:
        assert isinstance(e, RuntimeError)
        for n in needles:
            assert n in str(e), f"message {str(e)!r} lacks {n!r}"
        return
    raise AssertionError(f"no tinyds.Error (expected a message with {needles})")


# 1. errors
raises(lambda: tinyds.Config.preset("huge"), "huge", "nano")
raises(lambda: tinyds.Tokenizer().encode("caf\u00e9"), "position 3")
raises(lambda: tinyds.Model.load("/nonexistent/ckpt.safetensors"), "/nonexistent/ckpt.safetensors")
raises(lambda: tinyds.losses.dpo(*[np.zeros((2, 3))] * 5, np.zeros((2, 4))), "mask_l", "6")
raises(lambda: tinyds.losses.grpo(np.zeros((4, 3)), np.zeros((4, 3)), None, np.zeros(4), np.ones((4, 3)), 2,
                                  loss_type="mean"), "loss_type 'mean'")
cfg = tinyds.Config.preset("nano")
cfg.model.n_activated_experts = 9  # more than the 4 routed experts
raises(lambda: tinyds.Model(cfg), "n_activated_experts")
model = tinyds.Model.preset("nano", seed=3)
raises(lambda: model.param("layers.0.attn.nope"), "layers.0.attn.nope")
raises(lambda: model.layer(0), "no forward")
print("ok: errors raise tinyds.Error with tinyds's message")

# 2. zero-copy views
tok = np.array([[1, 20, 30, 40, 50, 60]], dtype=np.int32)
tgt = np.array([[20, 30, 40, 50, 60, 2]], dtype=np.int32)
before = model.forward(tok, tgt)
w = model.param("head")
assert w.shape == (model.config.model.vocab_size, model.config.model.d_model)
w[:] = 0.0  # zero head: every logit 0, so the main loss is log V exactly
model.forward(tok, tgt)
assert abs(model.main_loss - np.log(model.config.model.vocab_size)) < 1e-5, model.main_loss  # float32 log V
assert model.main_loss != before
head_view = tinyds.Model.preset("nano", seed=4).param("head")  # the model object is gone from Python ...
gc.collect()
assert np.isfinite(head_view).all() and np.abs(head_view).max() > 0  # ... but the view keeps it alive
print("ok: parameters are writable views that keep their model alive")

# 3. gradients by name against finite differences of the float64 model
m64 = tinyds.Model64.preset("nano", seed=5)
m64.zero_grad()
m64.forward(tok, tgt)
m64.backward()
rng = np.random.default_rng(0)
worst = 0.0
for name in ("embed", "layers.0.attn.wkv_a", "layers.1.ffn.gate", "layers.1.ffn.experts.w2", "head", "mtp.0.proj"):
    p, g = m64.param(name).reshape(-1), m64.grad(name).reshape(-1)
    for i in rng.choice(p.size, 4, replace=False):
        # Central differences in float64 with h 1e-5: truncation error ~h^2 * f''' ~1e-10 and rounding ~1e-16/h
        # ~1e-11 on a loss of size ~5; gradients here are >= ~1e-6, so 1e-6 absolute + 1e-4 relative separates
        # a right gradient from a wrong one (a missing term is off by far more than that).
        old = p[i]
        p[i] = old + 1e-5
        up = m64.forward(tok, tgt)
        p[i] = old - 1e-5
        down = m64.forward(tok, tgt)
        p[i] = old
        fd = (up - down) / 2e-5
        err = abs(fd - g[i])
        assert err <= 1e-6 + 1e-4 * abs(fd), f"{name}[{i}]: backward {g[i]:.9g}, finite differences {fd:.9g}"
        worst = max(worst, err)
print(f"ok: 24 gradient entries by name match finite differences (worst absolute error {worst:.2g})")

# 4. the internals
batch = tinyds.make_batch(tinyds.generate_problems(1, 4, seed=2), 48)
model = tinyds.Model.preset("nano", seed=6)
model.moe_bias[:] = np.linspace(-0.5, 0.5, model.moe_bias.size).reshape(model.moe_bias.shape)
model.forward(*batch)
l = model.moe_layers[0]
L = model.layer(l)
K = model.config.model.n_activated_experts
biased = L["scores"] + model.moe_bias[0]
top = np.sort(np.argsort(-biased, axis=-1, kind="stable")[..., :K], axis=-1)
assert (np.sort(L["topk_idx"], axis=-1) == top).all(), "the chosen experts are not the top-K of scores + bias"
w = np.take_along_axis(L["scores"], L["topk_idx"], -1)  # weights from the UNBIASED scores, normalised
assert np.allclose(L["topk_w"], w / w.sum(-1, keepdims=True), atol=1e-6)
load = np.bincount(L["topk_idx"].reshape(-1), minlength=model.config.model.n_routed_experts)
assert (np.array(model.moe_load()[0]) == load).all()
assert abs(model.moe_maxvio()[0] - (load.max() / load.mean() - 1)) < 1e-9
assert np.allclose(L["att"].sum(-1), 1.0, atol=1e-5)
assert L["c_kv"].shape[-1] == model.config.model.kv_lora_rank
print("ok: router choice, weights, loads, MaxVio and attention rows are consistent")
