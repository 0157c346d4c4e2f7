#!/usr/bin/python3
"""tests/reference/posttrain_losses.py — PyTorch reference values for tinyds's post-training losses.

    /usr/bin/python3 tests/reference/posttrain_losses.py --out FILE.safetensors [--seed 0]

Written from the formulas of DESIGN.md §6 (and trl's conventions where DESIGN names them), not from the C++:
each loss is a few torch lines, and every gradient comes from autograd. Everything is float64. Inputs are drawn
from a torch.Generator seeded with --seed and written next to the outputs, so the C++ test
(tests/posttrain/golden_test.cpp, doctest suite "posttrain_golden") runs on exactly these numbers.

Tensors (F64 unless noted; prefixes name the loss family):
  lp.logits (N,V), lp.targets (N) I32 (-1 = masked), lp.R (N)      -> lp.lp, lp.dlogits  (d sum(lp*R)),
                                                                      lp.entropy, lp.dlogits_entropy, sft.loss,
                                                                      sft.dlogits (at temperature 1)
  kl.lp, kl.lp_ref, kl.R (n)                                        -> kl.k{1,2,3}, kl.dlp_k{1,2,3}
  distill.student, distill.teacher (N,V), distill.targets I32       -> distill.{fwd,rev}.loss, .dstudent
  rm.r_w, rm.r_l (P)                                                -> rm.loss, rm.dr_w, rm.dr_l
  dpo.{lp_w,lp_ref_w,mask_w,lp_l,lp_ref_l,mask_l} (B,T)             -> dpo.{sigmoid,norm,ipo}.{loss,dlp_w,dlp_l,margin,accuracy}
  ppo.{lp_old,lp_ref,values_old,mask,lp,values} (B,T), ppo.scores   -> ppo.rewards, ppo.advantages (raw GAE), ppo.returns,
                                                                      ppo.whitened, ppo.loss, ppo.dlp, ppo.dvalues,
                                                                      ppo.pg_clipfrac, ppo.vf_clipfrac, ppo.approxkl
  grpo.{rewards (B), lp, lp_old, lp_ref, mask (B,T)}                -> grpo.advantages, grpo.{type}.loss, grpo.{type}.dlp,
                                                                      grpo.kl, grpo.clip_ratio
  reinforce.{rewards (B), lp, mask (B,T)}                           -> reinforce.advantages, reinforce.loss, reinforce.dlp
Hyper-parameters are in __metadata__ as strings (the C++ test parses them).
"""
import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from safetensors_io import write_safetensors  # noqa: E402

D = torch.float64
HP = {  # written to the metadata; the C++ side reads them from there
    "temperature": 0.7,
    "distill_alpha": 0.6, "distill_temperature": 2.0,
    "dpo_beta": 0.1,
    "ppo_kl_coef": 0.05, "ppo_gamma": 1.0, "ppo_lam": 0.95, "ppo_cliprange": 0.2, "ppo_cliprange_value": 0.2,
    "ppo_vf_coef": 0.1,
    "grpo_beta": 0.04, "grpo_epsilon": 0.2, "grpo_epsilon_high": 0.28, "grpo_num_generations": 3,
    "grpo_max_completion_length": 8,
}


def leaf(x):
    return x.detach().clone().requires_grad_(True)


def masked_mean(x, m):
    return (x * m).sum() / m.sum().clamp(min=1.0)


def logprob_family(g, out):
    N, V = 6, 7
    logits = torch.randn(N, V, generator=g, dtype=D) * 2.0
    targets = torch.randint(0, V, (N,), generator=g)
    targets[1] = -1
    targets[4] = -1
    keep = (targets >= 0).to(D)
    R = torch.randn(N, generator=g, dtype=D)
    T = HP["temperature"]
    safe = targets.clamp(min=0)  # gather needs a valid index; masked rows are zeroed after

    x = leaf(logits)
    logp = F.log_softmax(x / T, dim=-1)
    lp = logp.gather(1, safe[:, None])[:, 0] * keep
    (dlogits,) = torch.autograd.grad((lp * R).sum(), x)
    x2 = leaf(logits)
    logp2 = F.log_softmax(x2 / T, dim=-1)
    ent = -(logp2.exp() * logp2).sum(-1) * keep
    (dent,) = torch.autograd.grad((ent * R).sum(), x2)
    x3 = leaf(logits)  # SFT at temperature 1: masked mean of -lp
    lp1 = F.log_softmax(x3, dim=-1).gather(1, safe[:, None])[:, 0]
    sft = masked_mean(-lp1, keep)
    (dsft,) = torch.autograd.grad(sft, x3)
    out.update({"lp.logits": logits, "lp.targets": targets.to(torch.int32), "lp.R": R, "lp.lp": lp.detach(),
                "lp.dlogits": dlogits, "lp.entropy": ent.detach(), "lp.dlogits_entropy": dent,
                "sft.loss": sft.detach().reshape(1), "sft.dlogits": dsft})


def kl_family(g, out):
    n = 10
    lp = torch.randn(n, generator=g, dtype=D) * 0.5 - 1.0
    lp_ref = torch.randn(n, generator=g, dtype=D) * 0.5 - 1.0
    R = torch.randn(n, generator=g, dtype=D)
    out.update({"kl.lp": lp, "kl.lp_ref": lp_ref, "kl.R": R})
    for name, f in {"k1": lambda p, q: p - q,
                    "k2": lambda p, q: 0.5 * (q - p) ** 2,
                    "k3": lambda p, q: torch.exp(q - p) - (q - p) - 1}.items():
        p = leaf(lp)
        k = f(p, lp_ref)
        (d,) = torch.autograd.grad((k * R).sum(), p)
        out[f"kl.{name}"] = k.detach()
        out[f"kl.dlp_{name}"] = d


def distill_family(g, out):
    N, V = 6, 7
    s = torch.randn(N, V, generator=g, dtype=D) * 2.0
    t = torch.randn(N, V, generator=g, dtype=D) * 2.0
    targets = torch.randint(0, V, (N,), generator=g)
    targets[2] = -1
    keep = (targets >= 0).to(D)
    safe = targets.clamp(min=0)
    alpha, T = HP["distill_alpha"], HP["distill_temperature"]
    out.update({"distill.student": s, "distill.teacher": t, "distill.targets": targets.to(torch.int32)})
    for name in ("fwd", "rev"):
        x = leaf(s)
        log_ps = F.log_softmax(x / T, -1)
        log_pt = F.log_softmax(t / T, -1)
        if name == "fwd":   # KL(p_teacher || p_student)
            kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)
        else:               # KL(p_student || p_teacher)
            kl = (log_ps.exp() * (log_ps - log_pt)).sum(-1)
        ce = F.cross_entropy(x, safe, reduction="none")
        loss = masked_mean(alpha * T * T * kl + (1 - alpha) * ce, keep)
        (d,) = torch.autograd.grad(loss, x)
        out[f"distill.{name}.loss"] = loss.detach().reshape(1)
        out[f"distill.{name}.dstudent"] = d


def reward_model_family(g, out):
    P = 5
    rw = torch.randn(P, generator=g, dtype=D) * 2
    rl = torch.randn(P, generator=g, dtype=D) * 2
    a, b = leaf(rw), leaf(rl)
    loss = -F.logsigmoid(a - b).mean()
    da, db = torch.autograd.grad(loss, (a, b))
    out.update({"rm.r_w": rw, "rm.r_l": rl, "rm.loss": loss.detach().reshape(1), "rm.dr_w": da, "rm.dr_l": db})


def completion_mask(g, B, T, min_len=2):
    """(B, T) 0/1: a random-length prompt prefix of zeros, then a completion of >= min_len ones, then padding."""
    m = torch.zeros(B, T, dtype=D)
    for i in range(B):
        start = int(torch.randint(0, 2, (1,), generator=g))
        length = int(torch.randint(min_len, T - start + 1, (1,), generator=g))
        m[i, start:start + length] = 1.0
    return m


def dpo_family(g, out):
    B, T = 4, 6
    names = ["lp_w", "lp_ref_w", "lp_l", "lp_ref_l"]
    x = {k: torch.randn(B, T, generator=g, dtype=D) * 0.5 - 1.0 for k in names}
    mw, ml = completion_mask(g, B, T), completion_mask(g, B, T)
    out.update({f"dpo.{k}": v for k, v in x.items()})
    out.update({"dpo.mask_w": mw, "dpo.mask_l": ml})
    beta = HP["dpo_beta"]
    for variant in ("sigmoid", "norm", "ipo"):
        w, l = leaf(x["lp_w"]), leaf(x["lp_l"])
        if variant == "sigmoid":
            seq = lambda lp, m: (lp * m).sum(-1)  # noqa: E731
        else:
            seq = lambda lp, m: (lp * m).sum(-1) / m.sum(-1)  # noqa: E731
        chosen = seq(w, mw) - seq(x["lp_ref_w"], mw)
        rejected = seq(l, ml) - seq(x["lp_ref_l"], ml)
        h = chosen - rejected
        if variant == "ipo":
            losses = (h - 1 / (2 * beta)) ** 2
        else:
            losses = -F.logsigmoid(beta * h)
        loss = losses.mean()
        dw, dl = torch.autograd.grad(loss, (w, l))
        out[f"dpo.{variant}.loss"] = loss.detach().reshape(1)
        out[f"dpo.{variant}.dlp_w"] = dw
        out[f"dpo.{variant}.dlp_l"] = dl
        out[f"dpo.{variant}.margin"] = (beta * (chosen - rejected)).mean().detach().reshape(1)
        out[f"dpo.{variant}.accuracy"] = (chosen > rejected).to(D).mean().reshape(1)


def ppo_family(g, out):
    B, T = 3, 7
    mask = completion_mask(g, B, T, min_len=3)
    lp_old = torch.randn(B, T, generator=g, dtype=D) * 0.5 - 1.0
    lp_ref = torch.randn(B, T, generator=g, dtype=D) * 0.5 - 1.0
    values_old = torch.randn(B, T, generator=g, dtype=D) * 0.5
    scores = torch.randn(B, generator=g, dtype=D)
    lp = lp_old + torch.randn(B, T, generator=g, dtype=D) * 0.3
    values = values_old + torch.randn(B, T, generator=g, dtype=D) * 0.3
    kl_coef, gamma, lam = HP["ppo_kl_coef"], HP["ppo_gamma"], HP["ppo_lam"]
    # rewards: k1 penalty on completion tokens, score on the last one (trl: non_score_reward + scores at the end)
    rewards = -kl_coef * (lp_old - lp_ref) * mask
    last = torch.tensor([int(mask[i].nonzero().max()) for i in range(B)])
    rewards[torch.arange(B), last] += scores
    # GAE as trl writes it: zero-fill values and rewards outside the completion, recurse over the whole row
    v0 = values_old * mask
    adv_rev, lastgaelam = [], torch.zeros(B, dtype=D)
    for t in reversed(range(T)):
        nextv = v0[:, t + 1] if t < T - 1 else torch.zeros(B, dtype=D)
        delta = rewards[:, t] + gamma * nextv - v0[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        adv_rev.append(lastgaelam)
    adv = torch.stack(adv_rev[::-1], dim=1)
    returns = (adv + v0) * mask
    adv = adv * mask
    sel = mask.bool()
    whitened = torch.zeros_like(adv)
    whitened[sel] = (adv[sel] - adv[sel].mean()) / torch.sqrt(adv[sel].var(unbiased=True) + 1e-8)
    # clipped losses
    eps, eps_v, vf_coef = HP["ppo_cliprange"], HP["ppo_cliprange_value"], HP["ppo_vf_coef"]
    p, v = leaf(lp), leaf(values)
    ratio = torch.exp(p - lp_old)
    pg1 = -whitened * ratio
    pg2 = -whitened * torch.clamp(ratio, 1 - eps, 1 + eps)
    pg = masked_mean(torch.maximum(pg1, pg2), mask)
    vclip = torch.clamp(v, values_old - eps_v, values_old + eps_v)
    vf1, vf2 = (v - returns) ** 2, (vclip - returns) ** 2
    vf = 0.5 * masked_mean(torch.maximum(vf1, vf2), mask)
    loss = pg + vf_coef * vf
    dp, dv = torch.autograd.grad(loss, (p, v))
    out.update({"ppo.mask": mask, "ppo.lp_old": lp_old, "ppo.lp_ref": lp_ref, "ppo.values_old": values_old,
                "ppo.scores": scores, "ppo.lp": lp, "ppo.values": values, "ppo.rewards": rewards,
                "ppo.advantages": adv, "ppo.returns": returns, "ppo.whitened": whitened,
                "ppo.loss": loss.detach().reshape(1), "ppo.dlp": dp, "ppo.dvalues": dv,
                "ppo.pg_clipfrac": masked_mean((pg2 > pg1).to(D), mask).reshape(1).detach(),
                "ppo.vf_clipfrac": masked_mean((vf2 > vf1).to(D), mask).reshape(1).detach(),
                "ppo.approxkl": (0.5 * masked_mean((lp - lp_old) ** 2, mask)).reshape(1)})


def grpo_family(g, out):
    G = HP["grpo_num_generations"]
    B, T = 3 * G, 6
    rewards = torch.randint(0, 3, (B,), generator=g).to(D) * 0.5
    rewards[G:2 * G] = 1.0  # one degenerate group
    mask = completion_mask(g, B, T)
    lp_old = torch.randn(B, T, generator=g, dtype=D) * 0.5 - 1.0
    lp_ref = torch.randn(B, T, generator=g, dtype=D) * 0.5 - 1.0
    lp = lp_old + torch.randn(B, T, generator=g, dtype=D) * 0.3
    grouped = rewards.view(-1, G)
    std = grouped.std(dim=1)  # unbiased, as trl
    A = ((grouped - grouped.mean(1, keepdim=True)) / (std[:, None] + 1e-4)).reshape(B)
    beta, eps, eps_high, Lmax = HP["grpo_beta"], HP["grpo_epsilon"], HP["grpo_epsilon_high"], \
        HP["grpo_max_completion_length"]
    out.update({"grpo.rewards": rewards, "grpo.mask": mask, "grpo.lp_old": lp_old, "grpo.lp_ref": lp_ref,
                "grpo.lp": lp, "grpo.advantages": A})
    for loss_type in ("grpo", "bnpo", "dapo", "dr_grpo"):
        p = leaf(lp)
        c1 = torch.exp(p - lp_old)
        c2 = torch.clamp(c1, 1 - eps, 1 + eps_high)
        per_tok = -torch.min(c1 * A[:, None], c2 * A[:, None])
        kl = torch.exp(lp_ref - p) - (lp_ref - p) - 1
        per_tok = per_tok + beta * kl
        if loss_type == "grpo":
            loss = ((per_tok * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
        elif loss_type in ("bnpo", "dapo"):
            loss = (per_tok * mask).sum() / mask.sum().clamp(min=1.0)
        else:
            loss = (per_tok * mask).sum() / (B * Lmax)
        (d,) = torch.autograd.grad(loss, p)
        out[f"grpo.{loss_type}.loss"] = loss.detach().reshape(1)
        out[f"grpo.{loss_type}.dlp"] = d
    out["grpo.kl"] = masked_mean(kl.detach(), mask).reshape(1)
    low = (c1 < 1 - eps) & (A[:, None] < 0)
    high = (c1 > 1 + eps_high) & (A[:, None] > 0)
    out["grpo.clip_ratio"] = masked_mean((low | high).to(D).detach(), mask).reshape(1)

    # REINFORCE with the group-mean baseline: L = -(1/B) sum_i (R_i - mean_group) sum_t m lp
    Ar = (grouped - grouped.mean(1, keepdim=True)).reshape(B)
    p = leaf(lp)
    loss = -(Ar * (p * mask).sum(-1)).mean()
    (d,) = torch.autograd.grad(loss, p)
    out.update({"reinforce.advantages": Ar, "reinforce.loss": loss.detach().reshape(1), "reinforce.dlp": d})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(args.seed)
    out = {}
    for family in (logprob_family, kl_family, distill_family, reward_model_family, dpo_family, ppo_family,
                   grpo_family):
        family(g, out)
    tensors = {k: v.detach().numpy() for k, v in out.items()}
    meta = {k: repr(v) for k, v in HP.items()}
    meta.update({"seed": str(args.seed), "torch": torch.__version__})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    print(f"posttrain_losses: wrote {len(tensors)} tensors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
