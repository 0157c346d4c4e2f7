"""tests/reference/model.py — an independent PyTorch twin of the tinyds model (MHA/GQA/MQA or MLA attention; dense
SwiGLU or MoE FFNs; optional Multi-Token Prediction).

Written from the model's math (DESIGN.md section 4), not translated from the C++: autograd supplies every
gradient, so tinyds's hand-written backward passes can be checked against it (tests/reference/golden.py).

Shape legend: B batch, T time, C d_model, V vocab, H query heads, Hkv key/value heads, D head_dim, F ffn_hidden;
MLA only: Q q_lora_rank, L kv_lora_rank, R rope_dim; MoE (moe.py): E routed experts, K per token; Dmtp mtp_depth.

    x = embed[tokens]                                   (B, T, C)
    for each layer l:
        h = x + Attention(RMSNorm(x; attn_norm))        pre-norm residual blocks (Attention or MLA)
        x = h + FFN(RMSNorm(h; ffn_norm))               FFN: dense SwiGLU if l < n_dense_layers or E == 0, else MoE
    logits = RMSNorm(x; norm) @ head^T                  (B, T, V)   head is untied from embed (DeepSeek-V3)
    h^0 = x; for k = 1..Dmtp (MTPModule, V3 Eq. 21-25):
        h^k = Block_k(proj_k [RMSNorm(h^{k-1}; hnorm_k); RMSNorm(embed[t_{i+k}]; enorm_k)])
        logits_k = RMSNorm(h^k; norm) @ head^T, scored against t_{i+k+1}
    total = main CE + (mtp_lambda / Dmtp) sum_k CE_k + the balance losses of every MoE layer

Parameter names equal tinyds's (tinyds/model/params.h and the MoE/MTP spec): tinyds_parameters() yields "embed",
"layers.0.attn_norm", "layers.0.attn.wq", ..., "norm", "head", "mtp.0.hnorm", ..., with the same shapes, so a
tinyds checkpoint loads by name (named_parameters() agrees except for the router: "ffn.gate.weight" here is
tinyds's "ffn.gate"). Matrices are stored (out_features, in_features) like nn.Linear: y = x @ w^T.
An MLA layer's attention parameters are attn.wq_a, q_norm, wq_b, wkv_a, kv_norm, wkv_b, wo (see class MLA;
their row orders are tinyds/model/mla.h's). MoE layers also hold the buffer "ffn.gate.bias" (tinyds_buffers()).
"""
import json
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from config import ModelConfig
from moe import MoE, expert_load, update_bias
from safetensors_io import read_safetensors


def rms_norm(x, weight, eps):
    """RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight.   x (..., C), weight (C)."""
    rstd = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)   # (..., 1)
    return x * rstd * weight


def rope_tables(T, D, theta, dtype=torch.float32):
    """cos, sin (T, D/2) of the RoPE angles t * theta^(-2i/D) for positions t = 0..T-1 and pairs i = 0..D/2-1.
    The angles are computed in float64 and rounded once to `dtype` (float32: the most accurate float32 table)."""
    i = torch.arange(D // 2, dtype=torch.float64)                   # (D/2)
    inv_freq = theta ** (-2.0 * i / D)                               # (D/2)
    t = torch.arange(T, dtype=torch.float64)                         # (T)
    angle = torch.outer(t, inv_freq)                                 # (T, D/2)
    return angle.cos().to(dtype), angle.sin().to(dtype)


def apply_rope(x, cos, sin):
    """Rotates the INTERLEAVED pairs (x[2i], x[2i+1]) of the last dim by the angle of (position, pair).
    x (B, T, nh, D); cos, sin (T, D/2). As complex numbers this is (x[2i] + j x[2i+1]) * exp(j angle),
    DeepSeek-V3's view_as_complex formulation, written out in real arithmetic."""
    B, T, nh, D = x.shape
    pairs = x.reshape(B, T, nh, D // 2, 2)                           # (B, T, nh, D/2, 2)
    re, im = pairs[..., 0], pairs[..., 1]                             # (B, T, nh, D/2) each
    cos = cos[None, :, None, :]                                      # (1, T, 1, D/2) broadcast over B and heads
    sin = sin[None, :, None, :]
    out_re = re * cos - im * sin
    out_im = re * sin + im * cos
    return torch.stack((out_re, out_im), dim=-1).reshape(B, T, nh, D)  # re-interleave: (B, T, nh, D)


class Attention(nn.Module):
    """Causal multi-head attention with grouped key/value heads (MHA: Hkv = H, GQA: 1 < Hkv < H, MQA: Hkv = 1)
    and RoPE on queries and keys."""

    def __init__(self, cfg):
        super().__init__()
        C, H, Hkv, D = cfg.d_model, cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.n_head, self.n_kv_head, self.head_dim = H, Hkv, D
        self.wq = nn.Parameter(torch.empty(H * D, C))                 # (H*D, C)
        self.wk = nn.Parameter(torch.empty(Hkv * D, C))               # (Hkv*D, C)
        self.wv = nn.Parameter(torch.empty(Hkv * D, C))               # (Hkv*D, C)
        self.wo = nn.Parameter(torch.empty(C, H * D))                 # (C, H*D)

    def forward(self, a, cos, sin):
        """a (B, T, C) normalised input; cos, sin (T, D/2) -> (B, T, C)."""
        B, T, C = a.shape
        H, Hkv, D = self.n_head, self.n_kv_head, self.head_dim
        q = (a @ self.wq.t()).view(B, T, H, D)                        # (B, T, H, D)
        k = (a @ self.wk.t()).view(B, T, Hkv, D)                      # (B, T, Hkv, D)
        v = (a @ self.wv.t()).view(B, T, Hkv, D)                      # (B, T, Hkv, D)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        # Query head h reads kv head h // (H / Hkv): repeat each kv head for its group of consecutive query heads
        # (an expand is a view; the reshape copies: [kv0, kv0, kv1, kv1] for H 4, Hkv 2).
        group = H // Hkv
        k = k[:, :, :, None, :].expand(B, T, Hkv, group, D).reshape(B, T, H, D)   # (B, T, H, D)
        v = v[:, :, :, None, :].expand(B, T, Hkv, group, D).reshape(B, T, H, D)   # (B, T, H, D)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))              # (B, H, T, D) each
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))    # (B, H, T, T): [b, h, t, j] = q_t . k_j
        future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # (T, T): True where j > t
        scores = scores.masked_fill(future, float("-inf"))            # causal: exp(-inf) = 0, so t sees j <= t only
        att = F.softmax(scores, dim=-1)                               # (B, H, T, T) rows sum to 1
        o = att @ v                                                   # (B, H, T, D)
        o = o.transpose(1, 2).reshape(B, T, H * D)                    # (B, T, H*D): heads concatenated
        return o @ self.wo.t()                                        # (B, T, C)


class MLA(nn.Module):
    """Multi-head Latent Attention (DeepSeek-V2 arXiv 2405.04434 section 2.1; DESIGN.md section 4.1), the "naive"
    form: per-head content keys and values are materialised from the latent c_KV. Per token (a is the normed
    residual, width C):
        c_Q  = RMSNorm(a W_DQ^T; q_norm)          (Q)      W_DQ = wq_a
        q_C  = c_Q W_UQ^T                         (H, D)   W_UQ = rows [h(D+R), h(D+R)+D) of wq_b, per head h
        q_R  = RoPE(c_Q W_QR^T)                   (H, R)   W_QR = rows [h(D+R)+D, (h+1)(D+R)) of wq_b
        c_KV = RMSNorm(a W_DKV^T; kv_norm)        (L)      W_DKV = rows [0, L) of wkv_a
        k_R  = RoPE(a W_KR^T)                     (R)      W_KR = rows [L, L+R) of wkv_a: ONE key for all heads
        k_C  = c_KV W_UK^T, v = c_KV W_UV^T       (H, D)   per head h, rows [2hD, 2hD+D) / [2hD+D, 2(h+1)D) of wkv_b
        score(t, j, h) = (q_C[t,h] . k_C[j,h] + q_R[t,h] . k_R[j]) / sqrt(D + R), causal softmax over j <= t
        out = concat_h(sum_j p v[j,h]) W_O^T      (C)      W_O = wo
    RoPE rotates interleaved pairs with frequencies theta^(-2i/R) (the tables passed in are for width R)."""

    def __init__(self, cfg):
        super().__init__()
        C, H, D = cfg.d_model, cfg.n_head, cfg.head_dim
        Q, L, R = cfg.q_lora_rank, cfg.kv_lora_rank, cfg.rope_dim
        self.n_head, self.head_dim, self.rope_dim, self.kv_lora_rank = H, D, R, L
        self.eps = cfg.norm_eps
        self.wq_a = nn.Parameter(torch.empty(Q, C))                    # (Q, C)        W_DQ
        self.q_norm = nn.Parameter(torch.empty(Q))                     # (Q)
        self.wq_b = nn.Parameter(torch.empty(H * (D + R), Q))          # (H*(D+R), Q)  per head [W_UQ; W_QR]
        self.wkv_a = nn.Parameter(torch.empty(L + R, C))               # (L+R, C)      [W_DKV; W_KR]
        self.kv_norm = nn.Parameter(torch.empty(L))                    # (L)
        self.wkv_b = nn.Parameter(torch.empty(H * 2 * D, L))           # (H*2D, L)     per head [W_UK; W_UV]
        self.wo = nn.Parameter(torch.empty(C, H * D))                  # (C, H*D)      W_O

    def forward(self, a, cos, sin):
        """a (B, T, C) normalised input; cos, sin (T, R/2) RoPE tables of width R -> (B, T, C)."""
        B, T, C = a.shape
        H, D, R, L = self.n_head, self.head_dim, self.rope_dim, self.kv_lora_rank
        # Queries: a low-rank bottleneck through the normalised latent c_Q, then per-head content and rope parts.
        c_q = rms_norm(a @ self.wq_a.t(), self.q_norm, self.eps)      # (B, T, Q)
        q = (c_q @ self.wq_b.t()).view(B, T, H, D + R)                # (B, T, H, D+R)
        q_c, q_r = q[..., :D], q[..., D:]                             # (B, T, H, D), (B, T, H, R)
        q_r = apply_rope(q_r, cos, sin)                               # (B, T, H, R)
        # Keys/values: one projection gives the latent and the single rope key; only these two would be cached.
        kv_a = a @ self.wkv_a.t()                                     # (B, T, L+R)
        c_kv = rms_norm(kv_a[..., :L], self.kv_norm, self.eps)        # (B, T, L)
        k_r = apply_rope(kv_a[..., L:].reshape(B, T, 1, R), cos, sin)[:, :, 0]   # (B, T, R) shared by all heads
        kv = (c_kv @ self.wkv_b.t()).view(B, T, H, 2 * D)             # (B, T, H, 2D)
        k_c, v = kv[..., :D], kv[..., D:]                             # (B, T, H, D) each
        # The two score terms of DESIGN 4.1: content (per head) plus rope (the one k_R against each head's q_R).
        content = torch.einsum("bthd,bjhd->bhtj", q_c, k_c)           # (B, H, T, T): [b, h, t, j] = q_C[t] . k_C[j]
        rope = torch.einsum("bthr,bjr->bhtj", q_r, k_r)               # (B, H, T, T): [b, h, t, j] = q_R[t] . k_R[j]
        scores = (content + rope) * (1.0 / math.sqrt(D + R))          # the key is D+R wide, so is the scale
        future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # (T, T): True where j > t
        scores = scores.masked_fill(future, float("-inf"))            # causal: t sees j <= t only
        att = F.softmax(scores, dim=-1)                               # (B, H, T, T)
        o = torch.einsum("bhtj,bjhd->bthd", att, v)                   # (B, T, H, D)
        return o.reshape(B, T, H * D) @ self.wo.t()                   # (B, T, C): heads concatenated, then W_O


class FeedForward(nn.Module):
    """SwiGLU FFN (Shazeer 2020): w2( silu(w1 a) * (w3 a) ), hidden width F = ffn_hidden (the dense layers)."""

    def __init__(self, cfg):
        super().__init__()
        C, Fh = cfg.d_model, cfg.ffn_hidden
        self.w1 = nn.Parameter(torch.empty(Fh, C))                    # (F, C) gate projection
        self.w3 = nn.Parameter(torch.empty(Fh, C))                    # (F, C) up projection
        self.w2 = nn.Parameter(torch.empty(C, Fh))                    # (C, F) down projection

    def forward(self, a):
        """a (B, T, C) -> (B, T, C)."""
        gate = F.silu(a @ self.w1.t())                                # (B, T, F)
        up = a @ self.w3.t()                                          # (B, T, F)
        return (gate * up) @ self.w2.t()                              # (B, T, C)


class Block(nn.Module):
    """One pre-norm transformer layer; its FFN is the dense SwiGLU or, with moe=True, the MoE layer (moe.py)."""

    def __init__(self, cfg, moe=False):
        super().__init__()
        self.eps = cfg.norm_eps
        self.attn_norm = nn.Parameter(torch.empty(cfg.d_model))       # (C)
        self.attn = MLA(cfg) if cfg.attention == "mla" else Attention(cfg)
        self.ffn_norm = nn.Parameter(torch.empty(cfg.d_model))        # (C)
        self.is_moe = moe
        self.ffn = MoE(cfg) if moe else FeedForward(cfg)

    def forward(self, x, cos, sin):
        """x (B, T, C) -> (x' (B, T, C), Routing of the MoE FFN or None); cos, sin: the RoPE tables of the
        attention's rotated width (D, or R for MLA)."""
        h = x + self.attn(rms_norm(x, self.attn_norm, self.eps), cos, sin)
        a = rms_norm(h, self.ffn_norm, self.eps)                      # (B, T, C) u of DESIGN 4.2
        if not self.is_moe:
            return h + self.ffn(a), None
        out, routing = self.ffn(a)
        return h + out, routing


class MTPModule(nn.Module):
    """Multi-Token Prediction module k (V3 section 2.2, Eq. 21-24; DESIGN 4.4), k = 1..Dmtp, predicting the token
    k+1 places ahead at each position i:
        h'_i = M_k [RMSNorm(h^{k-1}_i; hnorm); RMSNorm(Emb(t_{i+k}); enorm)]     (C)   V3 Eq. 21, h FIRST (paper)
        h^k  = TRM_k(h')                                                          (C)   V3 Eq. 22: one full block
        P^k  = softmax(OutHead(RMSNorm(h^k; norm)))                                     V3 Eq. 23: the main
    model's final norm and head, and its embedding Emb, are shared (applied by TinyDS). M_k = proj (C, 2C): its
    first C columns read the normed h, the last C the normed embedding."""

    def __init__(self, cfg):
        super().__init__()
        C = cfg.d_model
        self.eps = cfg.norm_eps
        self.hnorm = nn.Parameter(torch.empty(C))                     # (C) RMSNorm gain of h^{k-1}
        self.enorm = nn.Parameter(torch.empty(C))                     # (C) RMSNorm gain of the embedding
        self.proj = nn.Parameter(torch.empty(C, 2 * C))               # (C, 2C) M_k
        self.block = Block(cfg, moe=cfg.n_routed_experts > 0)

    def forward(self, h_prev, emb, cos, sin):
        """h_prev (B, T, C) = h^{k-1}; emb (B, T, C) = Emb(t_{i+k}) -> (h^k (B, T, C), Routing or None)."""
        both = torch.cat([rms_norm(h_prev, self.hnorm, self.eps), rms_norm(emb, self.enorm, self.eps)], dim=-1)
        return self.block(both @ self.proj.t(), cos, sin)             # (B, T, 2C) -> (B, T, C) -> block


def mtp_shift(tokens, targets, k):
    """The inputs and targets of MTP module k (V3 Eq. 21, 24) at positions i = 0..T-1 of each sequence:
        emb_tok[b, i]    = tokens[b, i+k]    if i+k < T else 0     (t_{i+k}; 0 is a placeholder ...)
        mtp_target[b, i] = targets[b, i+k]   if i+k < T else -1    (... because its target is masked)
    targets[b, j] is the main model's target at j (the token after j), so mtp_target[b, i] is t_{i+k+1}.
    tokens, targets (B, T) int64 -> emb_tok, mtp_target (B, T) int64."""
    B, T = tokens.shape
    emb_tok = torch.zeros_like(tokens)                                # (B, T)
    mtp_target = torch.full_like(targets, -1)                         # (B, T)
    if k < T:
        emb_tok[:, :T - k] = tokens[:, k:]
        mtp_target[:, :T - k] = targets[:, k:]
    return emb_tok, mtp_target


@dataclass
class ForwardResult:
    """Everything one forward computes. Losses are scalars with autograd graphs (None without targets)."""
    logits: torch.Tensor                    # (B, T, V) main model
    mtp_logits: list                        # [(B, T, V)] per MTP module k = 1..Dmtp (empty without targets)
    main_loss: torch.Tensor = None          # mean CE over unmasked targets
    mtp_loss: torch.Tensor = None           # (mtp_lambda / Dmtp) sum_k L_k   (V3 Eq. 25); 0 without MTP
    mtp_losses: list = field(default_factory=list)   # [L_k]
    balance_loss: torch.Tensor = None       # sum over every MoE layer (main and MTP blocks); 0 without MoE
    total: torch.Tensor = None              # main_loss + mtp_loss + balance_loss: the training objective
    routings: list = field(default_factory=list)     # [Routing] per MoE layer: main layers, then MTP blocks


class TinyDS(nn.Module):
    """The tinyds language model: dense or MoE FFNs, optional MTP modules. Build from a ModelConfig (or its dict),
    or load_state(path)."""

    def __init__(self, cfg):
        super().__init__()
        if isinstance(cfg, dict):
            cfg = ModelConfig.from_dict(cfg)
        self.cfg = cfg
        self.embed = nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))   # (V, C)
        self.layers = nn.ModuleList(Block(cfg, moe=cfg.is_moe_layer(l)) for l in range(cfg.n_layer))
        self.norm = nn.Parameter(torch.empty(cfg.d_model))                     # (C)
        self.head = nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))    # (V, C)
        self.mtp = nn.ModuleList(MTPModule(cfg) for _ in range(cfg.mtp_depth))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator=None):
        """Random init like tinyds's: N(0, init_std) matrices (expert stacks included), output projections (wo, w2)
        additionally scaled by 1/sqrt(2 n_layer) (GPT-2's residual scaling), norm gains (attn_norm, q_norm,
        kv_norm, hnorm, ...) 1, MoE biases 0.
        Used by benchmarks and random checkpoints; golden tests always start from weights loaded from a checkpoint."""
        std = self.cfg.init_std
        for name, p in self.tinyds_parameters():
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                scale = 1.0 / math.sqrt(2 * self.cfg.n_layer) if name.endswith((".wo", ".w2")) else 1.0
                p.normal_(0.0, std * scale, generator=generator)
        for _, b in self.tinyds_buffers():
            b.zero_()

    def forward(self, tokens, targets=None):
        """tokens (B, T) int64 in [0, V); targets (B, T) int64, < 0 = ignored. Returns (logits (B, T, V), loss):
        loss is the TOTAL objective (main + MTP + balance; just the main loss for a dense model without MTP),
        None without targets. forward_parts gives the parts."""
        result = self.forward_parts(tokens, targets)
        return result.logits, result.total

    def forward_parts(self, tokens, targets=None):
        """The whole forward as a ForwardResult. Without targets only the main logits (and routings) are computed."""
        B, T = tokens.shape
        if T > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds model.max_seq_len = {self.cfg.max_seq_len}")
        # RoPE width: the whole head for dense attention, only the rope part R for MLA.
        rotated = self.cfg.rope_dim if self.cfg.attention == "mla" else self.cfg.head_dim
        cos, sin = rope_tables(T, rotated, self.cfg.rope_theta)               # (T, D/2) or (T, R/2) each
        x = self.embed[tokens]                                                 # (B, T, C)
        routings = []
        for layer in self.layers:
            x, routing = layer(x, cos, sin)                                    # (B, T, C)
            routings += [routing] if routing is not None else []
        logits = self.output_head(x)                                           # (B, T, V)
        result = ForwardResult(logits=logits, mtp_logits=[], routings=routings)
        if targets is None:
            return result
        result.main_loss = masked_cross_entropy(logits, targets)
        result.total = result.main_loss
        if self.mtp:
            self.mtp_forward(result, x, tokens, targets, cos, sin)
            result.total = result.total + result.mtp_loss
        else:
            result.mtp_loss = result.main_loss.new_zeros(())
        result.balance_loss = sum((r.balance for r in result.routings), result.main_loss.new_zeros(()))
        if result.routings:
            result.total = result.total + result.balance_loss
        return result

    def output_head(self, x):
        """The final RMSNorm and head, shared by the main model and every MTP module (V3 Eq. 23).
        x (B, T, C) -> logits (B, T, V); the head is untied from embed (DeepSeek-V3)."""
        return rms_norm(x, self.norm, self.cfg.norm_eps) @ self.head.t()

    def mtp_forward(self, result, x_last, tokens, targets, cos, sin):
        """The MTP chain (V3 Eq. 21-25): h^0 = x_last, the main residual stream after the last layer (before the
        final norm); module k reads h^{k-1} and Emb(t_{i+k}) and is scored against t_{i+k+1}. Fills result's
        mtp_logits, mtp_losses, mtp_loss and appends the MTP blocks' routings. Gradients flow back into the main
        model through h^0 and the shared embed / norm / head."""
        h = x_last                                                             # (B, T, C) h^0
        for k, module in enumerate(self.mtp, start=1):
            emb_tok, mtp_target = mtp_shift(tokens, targets, k)                # (B, T) each
            h, routing = module(h, self.embed[emb_tok], cos, sin)             # (B, T, C) h^k
            result.routings += [routing] if routing is not None else []
            logits_k = self.output_head(h)                                     # (B, T, V)
            result.mtp_logits.append(logits_k)
            result.mtp_losses.append(masked_cross_entropy(logits_k, mtp_target))   # V3 Eq. 24
        result.mtp_loss = (self.cfg.mtp_lambda / self.cfg.mtp_depth) * sum(result.mtp_losses)   # V3 Eq. 25

    @torch.no_grad()
    def update_moe_bias(self, routings):
        """The after-step auxiliary-loss-free bias update (V3 section 2.1.2; DESIGN 4.3), when balance has "bias":
        for every MoE layer, load_i = (token, slot) pairs routed to expert i in the WHOLE batch of the forward that
        gave `routings` (ForwardResult.routings); b_i += gamma * sign(mean(load) - load_i). No-op otherwise."""
        if "bias" not in self.cfg.balance_terms():
            return
        for r in routings:
            update_bias(r.gate.bias, expert_load(r.topk_idx, self.cfg.n_routed_experts), self.cfg.bias_update_speed)

    def layer_names(self):
        """tinyds's parameter names of one layer (attention, FFN) for a dense and an MoE FFN, relative to it."""
        if self.cfg.attention == "mla":
            attn = ["attn.wq_a", "attn.q_norm", "attn.wq_b", "attn.wkv_a", "attn.kv_norm", "attn.wkv_b", "attn.wo"]
        else:
            attn = ["attn.wq", "attn.wk", "attn.wv", "attn.wo"]
        dense = ["ffn.w1", "ffn.w3", "ffn.w2"]
        moe = ["ffn.gate", "ffn.experts.w1", "ffn.experts.w3", "ffn.experts.w2"]
        if self.cfg.n_shared_experts > 0:
            moe += ["ffn.shared_experts.w1", "ffn.shared_experts.w3", "ffn.shared_experts.w2"]
        return ["attn_norm"] + attn + ["ffn_norm"], dense, moe

    def blocks(self):
        """[(tinyds name prefix, Block)] in tinyds's order: main layers, then the MTP modules' blocks."""
        return ([(f"layers.{l}.", layer) for l, layer in enumerate(self.layers)]
                + [(f"mtp.{k}.block.", m.block) for k, m in enumerate(self.mtp)])

    def tinyds_parameters(self):
        """[(name, parameter)] in tinyds's layout order (tinyds/model/params.h and the MoE/MTP spec): embed, the
        layers, norm, head, then per MTP module hnorm, enorm, proj and its block. named_parameters() yields the same
        set in another order, and names the router weight "ffn.gate.weight" where tinyds says "ffn.gate"."""
        common, dense, moe = self.layer_names()
        names = ["embed"]
        for l, layer in enumerate(self.layers):
            names += [f"layers.{l}.{n}" for n in common + (moe if layer.is_moe else dense)]
        names += ["norm", "head"]
        for k, module in enumerate(self.mtp):
            names += [f"mtp.{k}.hnorm", f"mtp.{k}.enorm", f"mtp.{k}.proj"]
            names += [f"mtp.{k}.block.{n}" for n in common + (moe if module.block.is_moe else dense)]
        params = {tinyds_name(n): p for n, p in self.named_parameters()}
        assert sorted(names) == sorted(params), "tinyds_parameters() is out of date with the modules"
        return [(name, params[name]) for name in names]

    def tinyds_buffers(self):
        """[(name, bias buffer (E))] of every MoE layer in tinyds's order (main layers, then MTP blocks), e.g.
        "layers.1.ffn.gate.bias", "mtp.0.block.ffn.gate.bias". Empty for a dense model."""
        return [(prefix + "ffn.gate.bias", block.ffn.gate.bias) for prefix, block in self.blocks() if block.is_moe]

    def load_tensors(self, tensors, where):
        """Copies parameters and MoE bias buffers from {name: np.ndarray}; every one must be present with its exact
        shape. Names the twin does not know (e.g. "adam_m.<name>") are ignored."""
        with torch.no_grad():
            for name, p in self.tinyds_parameters() + self.tinyds_buffers():
                if name not in tensors:
                    kind = "buffer" if name.endswith(".gate.bias") else "parameter"
                    raise KeyError(f"{where}: {kind} '{name}' is missing")
                value = tensors[name]
                if tuple(value.shape) != tuple(p.shape):
                    raise ValueError(f"{where}: parameter '{name}' has shape {list(value.shape)}, "
                                     f"the model expects {list(p.shape)}")
                p.copy_(torch.from_numpy(value).to(p.dtype))


def tinyds_name(torch_name):
    """tinyds's name of a parameter: the same as PyTorch's, except the router weight (Gate is a module here, as in
    V3's code): "<prefix>ffn.gate.weight" -> "<prefix>ffn.gate"."""
    suffix = "ffn.gate.weight"
    return torch_name[:-len(".weight")] if torch_name.endswith(suffix) else torch_name


def masked_cross_entropy(logits, targets):
    """Mean over positions with target >= 0 of -log softmax(logits)[target].
    logits (B, T, V), targets (B, T); a negative target is masked out (like ignore_index)."""
    V = logits.shape[-1]
    logits, targets = logits.reshape(-1, V), targets.reshape(-1)             # (N, V), (N)
    keep = targets >= 0                                                       # (N) bool
    logp = F.log_softmax(logits, dim=-1)                                      # (N, V) max-subtracted inside
    picked = logp.gather(1, targets.clamp(min=0)[:, None])[:, 0]             # (N); masked rows read class 0 ...
    losses = torch.where(keep, -picked, torch.zeros_like(picked))            # ... and are zeroed here
    return losses.sum() / keep.sum().clamp(min=1)                             # all-masked batch: loss 0, not NaN


def load_state(path):
    """Builds the twin from a tinyds checkpoint: the config from __metadata__["config"], then the weights.
    Returns (model, full_config_dict)."""
    tensors, metadata = read_safetensors(path)
    if "config" not in metadata:
        raise KeyError(f"{path}: no __metadata__['config'] (is this a tinyds checkpoint?)")
    full_config = json.loads(metadata["config"])
    model = TinyDS(ModelConfig.from_dict(full_config, where=f"{path}: config"))
    model.load_tensors(tensors, where=path)
    return model, full_config
