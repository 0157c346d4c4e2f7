"""tests/reference/check_moe_mtp.py — self-tests of the twin's MoE layer, balance losses, bias update and MTP
modules against second, differently written versions of the same math. Run by check_reference.py (CHECKS below);
each check raises AssertionError naming what differs.

    MoE dispatch (moe.MoE: each expert on the tokens that chose it)  vs  every expert on every token, combined by
        a dense (N, E) gate-weight matrix built in a per-token Python loop (ranking by sorted(), shared experts as
        Ns separate SwiGLUs): sigmoid + bias + route_scale + Ns 2; softmax, K 3, no shared; group-limited routing.
        Outputs and the gradients of every MoE parameter and of the input.
    top-K ties                        vs  sorted(key=(-value, index)) on values with many exact ties
    seqaux / aux losses (V3 Eq. 17-20) vs  explicit loops over sequences, experts and tokens; a hand-built
        perfectly balanced case (L = 1); the score gradient vs its closed form (f constant)
    MTP chain (V3 Eq. 21-25)          vs  truncated sequences: module k run on positions 0..T-k-1 only, with
        tokens[:, k:] and targets[:, k:] (causality makes the padded tail irrelevant), proj split into its h and
        emb halves; mtp_shift on a hand-built example; the total objective summed by hand
    bias update                       vs  a hand example (load [3, 1, 2, 2] -> [-g, +g, 0, 0]) and loads counted in
        Python after a model forward; no-op without "bias"; the bias is a buffer, not a parameter
    names / config / loading          vs  the spec's tensor list for nano_ds typed out; bad MoE fields rejected;
        a missing gate.bias is an error, a non-zero one loads
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from config import ModelConfig, config_json, preset
from model import TinyDS, load_state, mtp_shift, rms_norm, rope_tables
from moe import MoE, aux_loss, eligible_experts, expert_load, select_experts, seqaux_loss, update_bias
from safetensors_io import write_safetensors

from check_util import TOL, expect_close, expect_raises  # noqa: F401  (float64 throughout; TOL explained there)




@torch.no_grad()
def randomise(module, generator, bias_std=0.0):
    """Unit-scale random weights (std 1/sqrt(fan_in), so that outputs and scores are O(1) and their spread is
    wide), norm gains in [0.5, 1.5], and MoE biases N(0, bias_std)."""
    for p in module.parameters():
        if p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) / math.sqrt(p.shape[-1]))
        else:
            p.copy_(0.5 + torch.rand(p.shape, generator=generator, dtype=p.dtype))
    for name, b in module.named_buffers():
        if name.endswith("gate.bias"):
            b.copy_(bias_std * torch.randn(b.shape, generator=generator, dtype=b.dtype))


# ---- MoE: dispatch vs a dense loop ----

def silu_glu(x, w1, w3, w2):
    """SwiGLU written out: (z sigmoid(z) * (x w3^T)) w2^T with z = x w1^T.   x (n, C) -> (n, C)."""
    z = x @ w1.t()
    return (z * torch.sigmoid(z) * (x @ w3.t())) @ w2.t()


def choose_by_loop(biased, K, n_group, topk_group):
    """One token's experts by plain Python: groups scored by the sum of their two best values, the best
    topk_group groups by sorted(key=(-score, group)), then the K best eligible experts by (-value, index)."""
    E = len(biased)
    candidates = list(range(E))
    if n_group > 1:
        G = E // n_group
        score = [sum(sorted(biased[g * G:(g + 1) * G], reverse=True)[:2]) for g in range(n_group)]
        best = sorted(range(n_group), key=lambda g: (-score[g], g))[:topk_group]
        candidates = [e for e in candidates if e // G in best]
    return sorted(candidates, key=lambda e: (-biased[e], e))[:K]


def moe_dense_loop(moe, u):
    """Second MoE layer: every expert on every token, weighted by a dense (N, E) matrix whose row n holds
    route_scale * s / sum(s of chosen) at the chosen experts and 0 elsewhere; shared experts as Ns SwiGLUs of
    hidden Fe (row / column slices of the stacked weights), summed. u (B, T, C) -> (out (B, T, C), chosen lists)."""
    cfg = moe.cfg
    B, T, C = u.shape
    E, K, Fe = cfg.n_routed_experts, cfg.n_activated_experts, cfg.moe_inter_dim
    x = u.reshape(B * T, C)                                                  # (N, C)
    logits = x @ moe.gate.weight.t()                                         # (N, E)
    if cfg.score_func == "sigmoid":
        s = 1.0 / (1.0 + torch.exp(-logits))
    else:
        s = torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)
    rows, chosen_all = [], []
    for n in range(B * T):
        biased = (s[n].detach() + moe.gate.bias).tolist()
        chosen = choose_by_loop(biased, K, cfg.n_expert_groups, cfg.n_limited_groups)
        chosen_all.append(chosen)
        denom = sum(s[n, e] for e in chosen)
        zero = s.new_zeros(())
        rows.append(torch.stack([cfg.route_scale * s[n, e] / denom if e in chosen else zero for e in range(E)]))
    weights = torch.stack(rows)                                              # (N, E), zeros where unchosen
    every = torch.stack([silu_glu(x, moe.experts.w1[e], moe.experts.w3[e], moe.experts.w2[e])
                         for e in range(E)], dim=1)                          # (N, E, C)
    out = (weights[:, :, None] * every).sum(dim=1)                           # (N, C)
    sh = moe.shared_experts
    for j in range(cfg.n_shared_experts):
        rows_j = slice(j * Fe, (j + 1) * Fe)
        out = out + silu_glu(x, sh.w1[rows_j], sh.w3[rows_j], sh.w2[:, rows_j])
    return out.view(B, T, C), chosen_all


def moe_config(**overrides):
    return ModelConfig.from_dict(preset("nano_ds", **overrides)["model"])


def check_moe_dispatch():
    """moe.MoE against moe_dense_loop: outputs, chosen experts, and gradients (every MoE parameter, the input)
    for one random upstream gradient. Route weights from BIASED scores, a dropped route_scale or shared expert,
    a max-only group score or an ignored bias each fail it by >= 1e-2."""
    cases = {"sigmoid, bias, route_scale 2.5, Ns 2": dict(n_routed_experts=6, n_shared_experts=2, route_scale=2.5),
             "softmax, K 3, no shared": dict(n_routed_experts=6, n_activated_experts=3, n_shared_experts=0,
                                             score_func="softmax"),
             "group-limited, 4 groups of 2, 2 eligible": dict(n_routed_experts=8, n_expert_groups=4,
                                                              n_limited_groups=2)}
    g = torch.Generator().manual_seed(3)
    for name, overrides in cases.items():
        moe = MoE(moe_config(**overrides)).double()
        randomise(moe, g, bias_std=0.3)   # large enough that the bias changes many choices
        u = torch.randn(2, 7, moe.cfg.d_model, generator=g, dtype=torch.float64, requires_grad=True)
        upstream = torch.randn(2, 7, moe.cfg.d_model, generator=g, dtype=torch.float64)
        got, routing = moe(u)
        want, chosen = moe_dense_loop(moe, u)
        if [sorted(c) for c in chosen] != [sorted(c) for c in routing.topk_idx.tolist()]:
            raise AssertionError(f"MoE ({name}): chosen experts differ from the loop's")
        expect_close(f"MoE dispatch vs dense loop ({name})", got, want)
        tensors = [u] + list(moe.parameters())
        d_got = torch.autograd.grad((got * upstream).sum(), tensors)
        d_want = torch.autograd.grad((want * upstream).sum(), tensors)
        for (pname, _), a, b in zip([("input", None)] + list(moe.named_parameters()), d_got, d_want):
            expect_close(f"MoE gradient of {pname} ({name})", a, b)


def check_topk_ties():
    """Ties go to the lower index: select_experts against sorted(key=(-value, index)) on values drawn from
    {0, 0.5, 1} (many exact ties), without and with groups; and two hand cases."""
    g = torch.Generator().manual_seed(4)
    biased = torch.randint(0, 3, (200, 8), generator=g).double() / 2                  # (200, 8)
    for n_group, topk_group in ((1, 1), (4, 2)):
        ok = torch.ones(200, 8, dtype=torch.bool)
        if n_group > 1:
            ok = eligible_experts(biased, n_group, topk_group)
        got = select_experts(biased, ok, 3).tolist()
        want = [choose_by_loop(row, 3, n_group, topk_group) for row in biased.tolist()]
        if got != want:
            raise AssertionError(f"top-K with ties (groups {n_group}): {got[:3]} vs {want[:3]} ...")
    all_ok = torch.ones(1, 4, dtype=torch.bool)
    if select_experts(torch.tensor([[0.5, 0.7, 0.7, 0.5]]), all_ok, 1).tolist() != [[1]]:
        raise AssertionError("tie between experts 1 and 2 for K = 1 must choose expert 1")
    if select_experts(torch.zeros(1, 4), all_ok, 2).tolist() != [[0, 1]]:
        raise AssertionError("all-equal scores with K = 2 must choose experts 0 and 1")


# ---- Balance losses ----

def seqaux_by_loop(scores, topk_idx, B, T, E, K):
    """V3 Eq. 17-20 by loops, the mean over sequences of sum_i f_i P_i. scores (N, E) with graph."""
    idx = topk_idx.tolist()
    total = scores.new_zeros(())
    for b in range(B):
        tokens = range(b * T, (b + 1) * T)
        for i in range(E):
            count = sum(1 for n in tokens for k in range(K) if idx[n][k] == i)
            f_i = E * count / (K * T)
            P_i = sum(scores[n, i] / scores[n].sum() for n in tokens) / T
            total = total + f_i * P_i
    return total / B


def check_balance_losses():
    """seqaux_loss / aux_loss against the loops (aux = one sequence of all N tokens) with B 3, T 5, E 6, K 2;
    the score gradient against dL/ds_tj = (f_bj - sum_i f_bi s'_ti) / (B T S_t); and a perfectly balanced hand
    case (f_i = 1, P_i = 1/E) giving exactly 1. A sum over sequences, unnormalised scores, a missing E/(K T) or a
    mean over all tokens instead of per sequence each fail it."""
    g = torch.Generator().manual_seed(5)
    B, T, E, K = 3, 5, 6, 2
    scores = torch.rand(B * T, E, generator=g, dtype=torch.float64).requires_grad_()   # (N, E) in (0, 1)
    topk_idx = torch.stack([torch.randperm(E, generator=g)[:K] for _ in range(B * T)])  # (N, K)
    got = seqaux_loss(scores.view(B, T, E), topk_idx.view(B, T, K), E, K)
    expect_close("seqaux vs loop", got, seqaux_by_loop(scores, topk_idx, B, T, E, K))
    expect_close("aux vs loop (one sequence)", aux_loss(scores, topk_idx, E, K),
                 seqaux_by_loop(scores, topk_idx, 1, B * T, E, K))
    (d_got,) = torch.autograd.grad(got, scores)
    with torch.no_grad():
        f = (E / (K * T)) * F.one_hot(topk_idx, E).sum(1).view(B, T, E).sum(1).double()   # (B, E)
        S = scores.sum(dim=-1, keepdim=True)                                                # (N, 1)
        f_tok = f.repeat_interleave(T, dim=0)                                               # (N, E)
        want = (f_tok - (f_tok * scores / S).sum(-1, keepdim=True)) / (B * T * S)
    expect_close("seqaux gradient vs closed form", d_got, want)
    # Perfect balance: E 4, K 2, T 2: token 0 -> {0, 1}, token 1 -> {2, 3}, equal scores.
    balanced = seqaux_loss(torch.full((1, 2, 4), 0.3, dtype=torch.float64), torch.tensor([[[0, 1], [2, 3]]]), 4, 2)
    expect_close("seqaux at perfect balance", balanced, 1.0)


# ---- Bias update ----

def check_bias_update():
    """The sign convention (overloaded experts go DOWN): load [3, 1, 2, 2] (mean 2) moves the bias by
    [-g, +g, 0, 0]; after a model forward the update equals loads counted in Python; no-op when balance lacks
    "bias"; the bias is a buffer (not a parameter, no gradient) and its value steers the choice."""
    bias = torch.zeros(4)
    update_bias(bias, torch.tensor([3, 1, 2, 2]), 0.01)
    expect_close("bias update on load [3, 1, 2, 2]", bias, torch.tensor([-0.01, 0.01, 0.0, 0.0]), tol=0.0)
    if expert_load(torch.tensor([[0, 1], [0, 2], [0, 3], [3, 2]]), 4).tolist() != [3, 1, 2, 2]:
        raise AssertionError("expert_load miscounts (token, slot) pairs")

    g = torch.Generator().manual_seed(6)
    for balance in ("bias+seqaux", "seqaux"):
        model = TinyDS(moe_config(balance=balance)).double()
        randomise(model, g, bias_std=0.1)
        tokens = torch.randint(0, 128, (2, 9), generator=g)
        result = model.forward_parts(tokens, torch.randint(0, 128, (2, 9), generator=g))
        before = [b.clone() for _, b in model.tinyds_buffers()]
        model.update_moe_bias(result.routings)
        gamma = model.cfg.bias_update_speed
        for (name, after), old, r in zip(model.tinyds_buffers(), before, result.routings):
            load = [sum(row.count(e) for row in r.topk_idx.tolist()) for e in range(4)]
            mean = sum(load) / 4
            step = [gamma * ((mean > l) - (mean < l)) for l in load] if "bias" in balance else [0.0] * 4
            expect_close(f"{name} after the update ({balance})", after, old + torch.tensor(step, dtype=old.dtype))
    names = {n for n, _ in model.named_parameters()}
    if any(n.endswith("gate.bias") for n in names):
        raise AssertionError("the MoE bias must be a buffer, not a parameter (AdamW must never touch it)")
    moe = model.layers[1].ffn
    with torch.no_grad():
        moe.gate.bias.copy_(torch.tensor([0.0, 0.0, 10.0, 0.0], dtype=torch.float64))
    _, routing = moe(torch.randn(2, 5, 32, generator=g, dtype=torch.float64))
    if not (routing.topk_idx == 2).any(dim=-1).all():
        raise AssertionError("a bias of +10 on expert 2 must make every token choose it")


# ---- MTP ----

def check_mtp_shift():
    """mtp_shift on a hand-built example: module k reads t_{i+k} and is scored against targets[i+k] (= t_{i+k+1});
    positions past the end read token 0 and are masked."""
    tokens, targets = torch.tensor([[10, 11, 12, 13]]), torch.tensor([[11, 12, -1, 14]])
    for k, emb, tgt in ((1, [[11, 12, 13, 0]], [[12, -1, 14, -1]]), (2, [[12, 13, 0, 0]], [[-1, 14, -1, -1]]),
                        (4, [[0, 0, 0, 0]], [[-1, -1, -1, -1]])):
        e, t = mtp_shift(tokens, targets, k)
        if e.tolist() != emb or t.tolist() != tgt:
            raise AssertionError(f"mtp_shift k={k}: got {e.tolist()}, {t.tolist()}; want {emb}, {tgt}")


def mtp_by_truncation(model, tokens, targets):
    """Second MTP chain: module k runs on the first T-k positions only, with tokens[:, k:] and targets[:, k:], so
    no position is padded or masked; proj applied as its two halves [W_h | W_e]. Main loss and CE by
    F.cross_entropy(ignore_index=-1). Returns (main loss, [L_k])."""
    cfg, T = model.cfg, tokens.shape[1]
    C, V = cfg.d_model, cfg.vocab_size
    cos, sin = rope_tables(T, cfg.rope_dim, cfg.rope_theta)
    x = model.embed[tokens]
    for layer in model.layers:
        x, _ = layer(x, cos, sin)
    head = lambda h: rms_norm(h, model.norm, cfg.norm_eps) @ model.head.t()              # noqa: E731
    main = F.cross_entropy(head(x).reshape(-1, V), targets.reshape(-1), ignore_index=-1)
    h, losses = x, []
    for k, module in enumerate(model.mtp, start=1):
        L = T - k
        m = (rms_norm(h[:, :L], module.hnorm, cfg.norm_eps) @ module.proj[:, :C].t()
             + rms_norm(model.embed[tokens[:, k:]], module.enorm, cfg.norm_eps) @ module.proj[:, C:].t())
        h, _ = module.block(m, *rope_tables(L, cfg.rope_dim, cfg.rope_theta))            # (B, L, C)
        losses.append(F.cross_entropy(head(h).reshape(-1, V), targets[:, k:].reshape(-1), ignore_index=-1))
    return main, losses


def check_mtp_chain():
    """The twin's forward_parts on a nano_ds model with mtp_depth 2 and balance bias+seqaux+aux (unit-scale
    weights, float64) against mtp_by_truncation, and the total objective against main + (lambda/D) sum L_k +
    the balance losses of every MoE layer summed by seqaux_by_loop. Also: the main logits are causal (changing
    token 6 leaves positions < 6 unchanged). The concatenation order [emb; h], a shift by k-1, a missing
    lambda/D, h^0 taken after the final norm, or the balance loss left out of the total each fail it."""
    cfg = moe_config(mtp_depth=2, balance="bias+seqaux+aux", aux_alpha=0.03, seq_aux_alpha=0.02, mtp_lambda=0.4)
    model = TinyDS(cfg).double()
    g = torch.Generator().manual_seed(7)
    randomise(model, g, bias_std=0.1)
    B, T, E, K = 2, 11, cfg.n_routed_experts, cfg.n_activated_experts
    tokens = torch.randint(0, 128, (B, T), generator=g)
    targets = torch.randint(0, 128, (B, T), generator=g)
    targets[0, 3] = targets[1, 9] = targets[0, 10] = -1
    r = model.forward_parts(tokens, targets)
    main, losses = mtp_by_truncation(model, tokens, targets)
    expect_close("main loss vs F.cross_entropy", r.main_loss, main)
    for k, (a, b) in enumerate(zip(r.mtp_losses, losses), start=1):
        expect_close(f"MTP module {k} loss vs truncated sequences", a, b)
    expect_close("mtp_loss = lambda/D sum_k L_k", r.mtp_loss, cfg.mtp_lambda / 2 * (losses[0] + losses[1]))
    if len(r.routings) != 3:   # layer 1 and both MTP blocks are MoE
        raise AssertionError(f"expected 3 MoE routings (layers.1, mtp.0, mtp.1), got {len(r.routings)}")
    balance = sum(cfg.seq_aux_alpha * seqaux_by_loop(x.scores, x.topk_idx, B, T, E, K)
                  + cfg.aux_alpha * seqaux_by_loop(x.scores, x.topk_idx, 1, B * T, E, K) for x in r.routings)
    expect_close("balance loss vs loops", r.balance_loss, balance)
    expect_close("total objective", r.total, main + r.mtp_loss + balance)
    changed = tokens.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 128
    expect_close("nano_ds: main logits before a changed token", model.forward_parts(changed).logits[:, :6],
                 r.logits[:, :6], tol=0.0)


# ---- Names, config, loading ----

def check_ds_names_and_config():
    """nano_ds's tensors and shapes as the spec lists them (typed out here), the buffers, and the config rules."""
    model = TinyDS(preset("nano_ds")["model"])
    mla = [("attn.wq_a", (8, 32)), ("attn.q_norm", (8,)), ("attn.wq_b", (48, 8)), ("attn.wkv_a", (16, 32)),
           ("attn.kv_norm", (12,)), ("attn.wkv_b", (64, 12)), ("attn.wo", (32, 32))]
    moe = [("ffn.gate", (4, 32)), ("ffn.experts.w1", (4, 16, 32)), ("ffn.experts.w3", (4, 16, 32)),
           ("ffn.experts.w2", (4, 32, 16)), ("ffn.shared_experts.w1", (16, 32)), ("ffn.shared_experts.w3", (16, 32)),
           ("ffn.shared_experts.w2", (32, 16))]
    layer = lambda p, ffn: ([(p + "attn_norm", (32,))] + [(p + n, s) for n, s in mla]        # noqa: E731
                            + [(p + "ffn_norm", (32,))] + [(p + n, s) for n, s in ffn])
    want = ([("embed", (128, 32))]
            + layer("layers.0.", [("ffn.w1", (64, 32)), ("ffn.w3", (64, 32)), ("ffn.w2", (32, 64))])
            + layer("layers.1.", moe) + [("norm", (32,)), ("head", (128, 32))]
            + [("mtp.0.hnorm", (32,)), ("mtp.0.enorm", (32,)), ("mtp.0.proj", (32, 64))] + layer("mtp.0.block.", moe))
    got = [(n, tuple(p.shape)) for n, p in model.tinyds_parameters()]
    if got != want:
        diff = [(a, b) for a, b in zip(got, want) if a != b][:3]
        raise AssertionError(f"nano_ds parameters differ from the spec: {diff} (lengths {len(got)}, {len(want)})")
    buffers = [(n, tuple(b.shape)) for n, b in model.tinyds_buffers()]
    if buffers != [("layers.1.ffn.gate.bias", (4,)), ("mtp.0.block.ffn.gate.bias", (4,))]:
        raise AssertionError(f"nano_ds buffers: {buffers}")

    base = preset("nano_ds")["model"]
    ModelConfig.from_dict({**base, "balance": "none"})
    ModelConfig.from_dict({**base, "balance": "aux+bias+seqaux", "score_func": "softmax"})
    ModelConfig.from_dict({**preset("nano")["model"], "n_activated_experts": 9})   # E = 0: K unchecked
    bad = [("balance", "bias+bias"), ("balance", "bias+"), ("balance", "loss-free"), ("n_activated_experts", 5),
           ("score_func", "relu"), ("n_expert_groups", 3), ("n_dense_layers", 3), ("mtp_depth", -1),
           ("route_scale", 0.0), ("seq_aux_alpha", -1e-3), ("moe_inter_dim", 0)]
    for field, value in bad:
        expect_raises(f"config {field} = {value!r}", ValueError, lambda: ModelConfig.from_dict({**base, field: value}),
                      f"model.{field}")
    grouped = {**base, "n_routed_experts": 8, "n_expert_groups": 4, "n_limited_groups": 1, "n_activated_experts": 3}
    expect_raises("K above the eligible experts", ValueError, lambda: ModelConfig.from_dict(grouped),
                  "model.n_activated_experts")


def check_ds_loading(tmp):
    """load_state on a nano_ds checkpoint: a non-zero gate.bias loads; a missing one is an error naming it."""
    cfg = preset("nano_ds")
    model = TinyDS(cfg["model"])
    tensors = {n: p.detach().numpy() for n, p in model.tinyds_parameters()}
    tensors.update({n: np.array([0.5, -0.25, 0.0, 1.0], np.float32) for n, _ in model.tinyds_buffers()})
    path, meta = os.path.join(tmp, "ds.safetensors"), {"config": config_json(cfg)}
    write_safetensors(path, tensors, meta)
    loaded, _ = load_state(path)
    for name, b in loaded.tinyds_buffers():
        if b.tolist() != [0.5, -0.25, 0.0, 1.0]:
            raise AssertionError(f"load_state did not load buffer {name}: {b.tolist()}")
    write_safetensors(path, {n: v for n, v in tensors.items() if n != "mtp.0.block.ffn.gate.bias"}, meta)
    expect_raises("missing gate.bias", KeyError, lambda: load_state(path), "mtp.0.block.ffn.gate.bias")


CHECKS = [check_moe_dispatch, check_topk_ties, check_balance_losses, check_bias_update, check_mtp_shift,
          check_mtp_chain, check_ds_names_and_config]
