#!/usr/bin/python3
"""tests/python/test_bindings_reward_model.py — tinyds.RewardModel and tinyds.preference_rows.

    PYTHONPATH=build/python /usr/bin/python3 tests/python/test_bindings_reward_model.py

  1. preference_rows: P chosen rows as given, then P rejected rows whose solution differs;
  2. a reward model made from a Model checkpoint has the Model's trunk and a zero head: every value is 0, and with
     a head written through the view, values == Model.final_hidden @ w + b (the same trunk weights, computed
     independently through the policy model);
  3. score(rows) is the value at each row's last completion position, found here from tinyds.make_batch's targets
     (the last unmasked target), and train_step's loss is the Bradley-Terry loss (tinyds.losses.reward_model) of
     those scores; steps on fixed pairs lower it.
"""
import os
import tempfile

import numpy as np

import tinyds

cfg = tinyds.Config.preset("nano")
cfg.model.max_seq_len = 128  # a level-1 problem is up to ~105 tokens
model = tinyds.Model(cfg, seed=5)
ckpt = os.path.join(tempfile.mkdtemp(), "policy.safetensors")
model.save(ckpt)

# 1. pairs
P = 6
chosen = tinyds.generate_problems(1, P, seed=11)
rows = tinyds.preference_rows(chosen, corruption="final", seed=3)
assert len(rows) == 2 * P
for p in range(P):
    assert rows[p]["answer"] == chosen[p]["answer"]
    assert rows[P + p]["question"] == chosen[p]["question"] and rows[P + p]["answer"] != chosen[p]["answer"]
    assert rows[P + p]["final_answer"] != chosen[p]["final_answer"]  # "final": the #### number is made wrong
print("ok: preference_rows: chosen as given, then each with a wrong final number")

# 2. trunk and head
rm = tinyds.RewardModel.from_checkpoint(ckpt)
tokens, targets = tinyds.make_batch(rows, max_T=cfg.model.max_seq_len)
C = cfg.model.d_model
assert rm.head.shape == (C + 1,) and (rm.head == 0).all()
assert (rm.values(tokens) == 0).all()  # a zero head: every reward starts at 0
rm.head[:] = np.random.default_rng(1).normal(0, 1, C + 1)
values = rm.values(tokens)
model.forward(tokens)
expected = model.final_hidden.astype(np.float64) @ rm.head[:C].astype(np.float64) + rm.head[C]
# Same float32 trunk, same inputs: x_L agrees bit for bit; the head's dot product of C = 32 float32 terms of size
# <~ 3 differs from the float64 one by < 32 * 6e-8 * 3 * 32 ~ 2e-4 in the worst case; 1e-4 relative to max |V|.
err = np.abs(values - expected).max()
assert err <= 1e-4 * max(1.0, np.abs(expected).max()), err
print(f"ok: RewardModel.values == Model.final_hidden @ w + b (max error {err:.1e})")

# 3. scores at the last completion token, and the training step's loss
last = np.array([np.flatnonzero(row >= 0)[-1] for row in targets])
r = rm.score(rows)
np.testing.assert_array_equal(r, values[np.arange(2 * P), last].astype(np.float64))
rm.head[:] = 0.0  # as `tinyds rm` starts: all rewards 0, loss log 2
stats, _, _ = tinyds.losses.reward_model(rm.score(rows)[:P], rm.score(rows)[P:])
first = rm.train_step(rows, lr=3e-3)
assert abs(first["loss"] - stats["loss"]) < 1e-6 and abs(first["loss"] - np.log(2)) < 1e-6, (first, stats)
assert first["margin"] == 0.0 and first["reward_chosen"] == 0.0
for _ in range(15):
    rm.train_step(rows, lr=3e-3)
assert rm.steps == 16
after, _, _ = tinyds.losses.reward_model(rm.score(rows)[:P], rm.score(rows)[P:])
# 16 Adam steps at lr 3e-3 on 6 fixed pairs take the loss from log 2 (0.693) to 0.097 (measured); a gradient with
# the wrong sign would raise it above log 2, a gradient that never reaches the head would leave it at log 2.
assert after["loss"] < 0.4 and after["accuracy"] == 1.0, after
print(f"ok: score = values at the last completion token; train_step's loss is Bradley-Terry's "
      f"({first['loss']:.4f} = log 2 at the start, {after['loss']:.3f} after 16 steps)")
