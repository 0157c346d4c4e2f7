"""tests/reference/moe.py — the twin's Mixture-of-Experts FFN, written from the math (DESIGN.md 4.2-4.3).

Fine-grained routed experts plus always-on shared experts (DeepSeekMoE arXiv 2401.06066; DeepSeek-V3 arXiv
2412.19437 section 2.1.2), a sigmoid or softmax router whose bias only chooses experts (auxiliary-loss-free
balancing), optional group-limited routing, the sequence-wise (V3 Eq. 17-20) and expert-level (DeepSeekMoE) balance
losses, and the after-step bias update. Autograd supplies every gradient: the top-K choice and the bias are
integers / buffers and carry none, exactly as DESIGN 4.2 asks.

Shape legend: B batch, T time, N = B*T tokens, C d_model, E routed experts, K experts per token, Fe moe_inter_dim
(one expert's hidden width), Ns shared experts, S = Ns*Fe (the shared experts' hidden width).

    s        = sigmoid(u @ gate^T)  or softmax over E            (N, E)   V3 Eq. 15 (softmax: DeepSeekMoE)
    chosen   = TopK(s + b, K), ties to the lower index           (N, K)   V3 Eq. 16: b only chooses
    g_k      = route_scale * s[chosen_k] / sum_j s[chosen_j]     (N, K)   V3 Eq. 13: unbiased scores only
    out      = sum_k g_k SwiGLU_{chosen_k}(u) + SwiGLU_shared(u) (N, C)   V3 Eq. 12 (the caller adds the residual)

Parameter names (tinyds's, relative to a layer): ffn.gate (E, C), ffn.experts.w1 / w3 (E, Fe, C), ffn.experts.w2
(E, C, Fe), ffn.shared_experts.w1 / w3 (S, C), ffn.shared_experts.w2 (C, S); the buffer ffn.gate.bias (E).
In PyTorch the router is a module (Gate, as in V3's code) so its weight is "ffn.gate.weight" here: model.py maps
that one name to tinyds's "ffn.gate"; the buffer's name "ffn.gate.bias" is already tinyds's.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def swiglu(x, w1, w3, w2):
    """SwiGLU FFN (Shazeer 2020): w2 (silu(w1 x) * (w3 x)).   x (n, C), w1 / w3 (Fh, C), w2 (C, Fh) -> (n, C)."""
    return (F.silu(x @ w1.t()) * (x @ w3.t())) @ w2.t()


@dataclass
class Routing:
    """One MoE layer's routing in one forward: what the balance losses, the bias update and the golden metadata
    need. `scores` keeps its autograd graph; the rest carries no gradient."""
    gate: "Gate"              # the router, whose bias buffer the after-step update moves
    scores: torch.Tensor      # (N, E) the unbiased scores s
    biased: torch.Tensor      # (N, E) s + b, detached: what the choice ranked
    eligible: torch.Tensor    # (N, E) bool: experts of the groups a token may use (all True without groups)
    topk_idx: torch.Tensor    # (N, K) int64 chosen experts, best first
    weights: torch.Tensor     # (N, K) g_k
    balance: torch.Tensor     # scalar: alpha_seq * L_seq + alpha_aux * L_aux of this layer (0 when both are off)


# ---- Router (V3 Eq. 13-16) ----

def router_scores(logits, score_func):
    """s (N, E) from logits (N, E): independent sigmoids (V3 Eq. 15) or a softmax over the E experts."""
    return torch.sigmoid(logits) if score_func == "sigmoid" else F.softmax(logits, dim=-1)


def stable_rank(values):
    """Indices (rows, E) of each row of values (rows, E) sorted descending; equal values keep their index order,
    so a tie goes to the LOWER index (tinyds's rule: the choice is a function of the values alone)."""
    return torch.sort(values, dim=-1, descending=True, stable=True).indices


def group_scores(biased, n_group):
    """Group-limited routing (V3's inference code): the E experts form n_group contiguous groups of G = E/n_group;
    a group's score is the sum of its two largest biased scores (its one score when G = 1).
    biased (N, E) -> (N, n_group)."""
    N, E = biased.shape
    per_group = biased.reshape(N, n_group, E // n_group)                        # (N, n_group, G)
    top = per_group.topk(min(2, E // n_group), dim=-1).values                   # (N, n_group, <=2) values only
    return top.sum(dim=-1)                                                      # (N, n_group)


def eligible_experts(biased, n_group, topk_group):
    """(N, E) bool: True for the experts of the topk_group best groups (all True when n_group <= 1)."""
    N, E = biased.shape
    if n_group <= 1:
        return torch.ones(N, E, dtype=torch.bool)
    best_groups = stable_rank(group_scores(biased, n_group))[:, :topk_group]   # (N, topk_group)
    group_ok = torch.zeros(N, n_group, dtype=torch.bool).scatter(1, best_groups, True)   # (N, n_group)
    return group_ok.repeat_interleave(E // n_group, dim=1)                      # (N, E): each group's G experts


def select_experts(biased, eligible, K):
    """The K eligible experts with the largest biased score, best first (ties: lower index).
    biased (N, E), eligible (N, E) bool -> (N, K) int64."""
    ranked = biased.masked_fill(~eligible, float("-inf"))                      # ineligible experts rank last
    return stable_rank(ranked)[:, :K]


def min_topk_gap(routing, K, n_group, topk_group):
    """The smallest margin of any choice in this routing: over tokens, the biased score of the K-th chosen expert
    minus that of the best unchosen eligible one, and with groups also the topk_group-th best group score minus
    the next. A float32 re-computation (tinyds's) can only choose differently where this is at rounding level."""
    ranked = routing.biased.masked_fill(~routing.eligible, float("-inf"))
    values = ranked.sort(dim=-1, descending=True).values                       # (N, E)
    gaps = [values[:, K - 1] - values[:, K]] if K < values.shape[1] else []    # (N) each; -inf rows: inf gap
    if n_group > 1 and topk_group < n_group:
        g = group_scores(routing.biased, n_group).sort(dim=-1, descending=True).values   # (N, n_group)
        gaps.append(g[:, topk_group - 1] - g[:, topk_group])
    return min((x.min().item() for x in gaps), default=float("inf"))


class Gate(nn.Module):
    """The router (V3 Eq. 13-16; V3's code calls it Gate). weight: the expert centroids e_i (E, C); bias: the
    auxiliary-loss-free balancing bias b (E), a BUFFER (no gradient, never touched by AdamW, moved after each
    optimizer step by update_bias), zero at init and loaded from the checkpoint."""

    def __init__(self, cfg):
        super().__init__()
        E, C = cfg.n_routed_experts, cfg.d_model
        self.K, self.score_func, self.route_scale = cfg.n_activated_experts, cfg.score_func, cfg.route_scale
        self.n_group, self.topk_group = cfg.n_expert_groups, cfg.n_limited_groups
        self.weight = nn.Parameter(torch.empty(E, C))                         # (E, C) centroids
        self.register_buffer("bias", torch.zeros(E))                          # (E) selection-only bias

    def forward(self, x):
        """x (N, C) -> (scores (N, E), biased (N, E), eligible (N, E), topk_idx (N, K), weights (N, K))."""
        s = router_scores(x @ self.weight.t(), self.score_func)              # (N, E)   V3 Eq. 15
        # The bias shifts the ranking only (V3 Eq. 16): no gradient flows through the choice or the bias.
        biased = s.detach() + self.bias                                       # (N, E)
        eligible = eligible_experts(biased, self.n_group, self.topk_group)    # (N, E) bool
        topk_idx = select_experts(biased, eligible, self.K)                   # (N, K)
        chosen = s.gather(1, topk_idx)                                        # (N, K) unbiased scores
        weights = self.route_scale * chosen / chosen.sum(dim=-1, keepdim=True)   # (N, K)  V3 Eq. 13
        return s, biased, eligible, topk_idx, weights


# ---- Experts ----

class Experts(nn.Module):
    """E routed SwiGLU experts of hidden Fe, stored stacked as tinyds does: expert e is (w1[e], w3[e], w2[e])."""

    def __init__(self, cfg):
        super().__init__()
        E, C, Fe = cfg.n_routed_experts, cfg.d_model, cfg.moe_inter_dim
        self.w1 = nn.Parameter(torch.empty(E, Fe, C))                         # (E, Fe, C) gate projections
        self.w3 = nn.Parameter(torch.empty(E, Fe, C))                         # (E, Fe, C) up projections
        self.w2 = nn.Parameter(torch.empty(E, C, Fe))                         # (E, C, Fe) down projections

    def expert(self, e, x):
        """Expert e on its tokens: x (n, C) -> (n, C)."""
        return swiglu(x, self.w1[e], self.w3[e], self.w2[e])


class SharedExperts(nn.Module):
    """The Ns shared experts as ONE SwiGLU of hidden S = Ns*Fe: Ns SwiGLUs of hidden Fe, summed, are one SwiGLU
    with their weights stacked (V3 does the same)."""

    def __init__(self, cfg):
        super().__init__()
        C, S = cfg.d_model, cfg.n_shared_experts * cfg.moe_inter_dim
        self.w1 = nn.Parameter(torch.empty(S, C))                             # (S, C)
        self.w3 = nn.Parameter(torch.empty(S, C))                             # (S, C)
        self.w2 = nn.Parameter(torch.empty(C, S))                             # (C, S)

    def forward(self, x):
        """x (N, C) -> (N, C)."""
        return swiglu(x, self.w1, self.w3, self.w2)


# ---- Balance losses (V3 Eq. 17-20; DeepSeekMoE section 4.1) ----

def expert_counts(topk_idx, E):
    """(..., E) float: how many of each token group's (token, slot) pairs chose each expert.
    topk_idx (..., T, K) -> counts over the T tokens and K slots."""
    one_hot = F.one_hot(topk_idx, E).to(torch.float64)                        # (..., T, K, E)
    return one_hot.sum(dim=(-3, -2))                                          # (..., E)


def seqaux_loss(scores, topk_idx, E, K):
    """Sequence-wise balance loss without alpha (V3 Eq. 17-20), the MEAN over the B sequences
    (tinyds/ops/moe_balance.h: keeps alpha's meaning independent of B). Per sequence of T tokens:
        f_i = E / (K T) * #{t : i chosen for t}         (V3 Eq. 18; a count: constant for the gradient)
        s'_ti = s_ti / sum_j s_tj                        (V3 Eq. 19)
        P_i = (1/T) sum_t s'_ti                          (V3 Eq. 20)
        L = sum_i f_i P_i                                (V3 Eq. 17; 1 at perfect balance)
    scores (B, T, E) with graph, topk_idx (B, T, K) -> scalar."""
    B, T, _ = scores.shape
    f = (E / (K * T)) * expert_counts(topk_idx, E).to(scores.dtype)          # (B, E), no graph
    s_norm = scores / scores.sum(dim=-1, keepdim=True)                        # (B, T, E)
    P = s_norm.mean(dim=1)                                                    # (B, E)
    return (f * P).sum(dim=-1).mean()                                         # mean over sequences


def aux_loss(scores, topk_idx, E, K):
    """Expert-level balance loss without alpha (DeepSeekMoE section 4.1, the "aux" baseline): the sequence-wise
    loss with the whole batch as ONE sequence (f over all N tokens, P the mean normalised score over all N).
    scores (N, E), topk_idx (N, K) -> scalar."""
    return seqaux_loss(scores[None], topk_idx[None], E, K)


def balance_loss(cfg, scores, topk_idx, B, T):
    """alpha_seq * L_seq + alpha_aux * L_aux for the terms `cfg.balance` names (a zero scalar when neither).
    scores (N, E), topk_idx (N, K), N = B*T in sequence-major order."""
    E, K, terms = cfg.n_routed_experts, cfg.n_activated_experts, cfg.balance_terms()
    loss = scores.new_zeros(())
    if "seqaux" in terms:
        loss = loss + cfg.seq_aux_alpha * seqaux_loss(scores.view(B, T, E), topk_idx.view(B, T, K), E, K)
    if "aux" in terms:
        loss = loss + cfg.aux_alpha * aux_loss(scores, topk_idx, E, K)
    return loss


# ---- The layer ----

class MoE(nn.Module):
    """The MoE FFN of one layer (V3 Eq. 12 without the residual): router, routed experts, shared experts."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.gate = Gate(cfg)
        self.experts = Experts(cfg)
        self.shared_experts = SharedExperts(cfg) if cfg.n_shared_experts > 0 else None

    def forward(self, u):
        """u (B, T, C) the normalised residual -> (out (B, T, C), Routing)."""
        B, T, C = u.shape
        x = u.reshape(B * T, C)                                               # (N, C)
        s, biased, eligible, topk_idx, weights = self.gate(x)
        routed = torch.zeros_like(x)                                          # (N, C)
        # Dispatch: each expert runs once on the tokens that chose it, and its weighted output is added back to
        # them (no capacity limit, no token dropped: V3). Clarity over speed: a Python loop over experts.
        for e in range(self.cfg.n_routed_experts):
            token, slot = torch.nonzero(topk_idx == e, as_tuple=True)        # (n_e), (n_e)
            if token.numel() == 0:
                continue
            y = self.experts.expert(e, x[token])                             # (n_e, C)
            routed = routed.index_add(0, token, weights[token, slot, None] * y)
        out = routed if self.shared_experts is None else routed + self.shared_experts(x)
        routing = Routing(self.gate, s, biased, eligible, topk_idx, weights,
                          balance_loss(self.cfg, s, topk_idx, B, T))
        return out.view(B, T, C), routing


# ---- After the optimizer step (auxiliary-loss-free balancing, V3 section 2.1.2; DESIGN 4.3) ----

def expert_load(topk_idx, E):
    """load (E) int64: the number of (token, slot) pairs routed to each expert (sums to N*K).  topk_idx (N, K)."""
    return torch.bincount(topk_idx.reshape(-1), minlength=E)


@torch.no_grad()
def update_bias(bias, load, gamma):
    """bias (E) += gamma * sign(mean(load) - load_i), sign(0) = 0: overloaded experts go down, underloaded up.
    The sign is taken of the integer total - E * load_i (= E (mean - load_i)), so an exactly average expert gets 0
    with no float rounding of the mean.   load (E) int64."""
    E = load.numel()
    sign = torch.sign(load.sum() - E * load)                                  # (E) int64 in {-1, 0, 1}
    bias += gamma * sign.to(bias.dtype)
