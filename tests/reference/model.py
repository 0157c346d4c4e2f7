"""tests/reference/model.py — an independent PyTorch twin of the tinyds model (dense FFN; MHA/GQA/MQA or MLA).

Written from the model's math (DESIGN.md section 4), not translated from the C++: autograd supplies every
gradient, so tinyds's hand-written backward passes can be checked against it (tests/reference/golden.py).

Shape legend: B batch, T time, C d_model, V vocab, H query heads, Hkv key/value heads, D head_dim, F ffn_hidden;
MLA only: Q q_lora_rank, L kv_lora_rank, R rope_dim.

    x = embed[tokens]                                   (B, T, C)
    for each layer:
        h = x + Attention(RMSNorm(x; attn_norm))        pre-norm residual blocks (Attention or MLA)
        x = h + FeedForward(RMSNorm(h; ffn_norm))
    logits = RMSNorm(x; norm) @ head^T                  (B, T, V)   head is untied from embed (DeepSeek-V3)

Parameter names equal tinyds's (tinyds/model/params.h): model.named_parameters() yields "embed",
"layers.0.attn_norm", "layers.0.attn.wq", ..., "norm", "head", with the same shapes, so a tinyds checkpoint
loads by name. Matrices are stored (out_features, in_features) like nn.Linear: y = x @ w^T.
An MLA layer's attention parameters are attn.wq_a, q_norm, wq_b, wkv_a, kv_norm, wkv_b, wo (see class MLA;
their row orders are tinyds/model/mla.h's).
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from config import ModelConfig
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
    """SwiGLU FFN (Shazeer 2020): w2( silu(w1 a) * (w3 a) )."""

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
    """One pre-norm transformer layer."""

    def __init__(self, cfg):
        super().__init__()
        self.eps = cfg.norm_eps
        self.attn_norm = nn.Parameter(torch.empty(cfg.d_model))       # (C)
        self.attn = MLA(cfg) if cfg.attention == "mla" else Attention(cfg)
        self.ffn_norm = nn.Parameter(torch.empty(cfg.d_model))        # (C)
        self.ffn = FeedForward(cfg)

    def forward(self, x, cos, sin):
        """x (B, T, C) -> (B, T, C); cos, sin: the RoPE tables of the attention's rotated width (D, or R for MLA)."""
        h = x + self.attn(rms_norm(x, self.attn_norm, self.eps), cos, sin)
        return h + self.ffn(rms_norm(h, self.ffn_norm, self.eps))


class TinyDS(nn.Module):
    """The tinyds language model (dense FFN). Build from a ModelConfig (or its dict), or load_state(path)."""

    def __init__(self, cfg):
        super().__init__()
        if isinstance(cfg, dict):
            cfg = ModelConfig.from_dict(cfg)
        self.cfg = cfg
        self.embed = nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))   # (V, C)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = nn.Parameter(torch.empty(cfg.d_model))                     # (C)
        self.head = nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))    # (V, C)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator=None):
        """Random init like tinyds's: N(0, init_std) matrices, output projections (wo, w2) additionally scaled by
        1/sqrt(2 n_layer) (GPT-2's residual scaling), norm gains (attn_norm, q_norm, kv_norm, ...) 1.
        Used by benchmarks and random checkpoints; golden tests always start from weights loaded from a checkpoint."""
        std = self.cfg.init_std
        for name, p in self.tinyds_parameters():
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                scale = 1.0 / math.sqrt(2 * self.cfg.n_layer) if name.endswith((".wo", ".w2")) else 1.0
                p.normal_(0.0, std * scale, generator=generator)

    def forward(self, tokens, targets=None):
        """tokens (B, T) int64 in [0, V); targets (B, T) int64, < 0 = ignored. Returns (logits (B, T, V), loss),
        loss None without targets."""
        B, T = tokens.shape
        if T > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds model.max_seq_len = {self.cfg.max_seq_len}")
        # RoPE width: the whole head for dense attention, only the rope part R for MLA.
        rotated = self.cfg.rope_dim if self.cfg.attention == "mla" else self.cfg.head_dim
        cos, sin = rope_tables(T, rotated, self.cfg.rope_theta)               # (T, D/2) or (T, R/2) each
        x = self.embed[tokens]                                                 # (B, T, C)
        for layer in self.layers:
            x = layer(x, cos, sin)                                             # (B, T, C)
        logits = rms_norm(x, self.norm, self.cfg.norm_eps) @ self.head.t()    # (B, T, V)
        loss = None if targets is None else masked_cross_entropy(logits, targets)
        return logits, loss

    def tinyds_parameters(self):
        """[(name, parameter)] in tinyds's layout order (tinyds/model/params.h). named_parameters() yields the same
        set in another order (a module's own parameters before its children's)."""
        if self.cfg.attention == "mla":
            attn = ["attn.wq_a", "attn.q_norm", "attn.wq_b", "attn.wkv_a", "attn.kv_norm", "attn.wkv_b", "attn.wo"]
        else:
            attn = ["attn.wq", "attn.wk", "attn.wv", "attn.wo"]
        per_layer = ["attn_norm"] + attn + ["ffn_norm", "ffn.w1", "ffn.w3", "ffn.w2"]
        names = (["embed"] + [f"layers.{l}.{n}" for l in range(self.cfg.n_layer) for n in per_layer]
                 + ["norm", "head"])
        params = dict(self.named_parameters())
        assert sorted(names) == sorted(params), "tinyds_parameters() is out of date with the modules"
        return [(name, params[name]) for name in names]

    def load_tensors(self, tensors, where):
        """Copies parameters from {name: np.ndarray}; every parameter must be present with its exact shape.
        Names the twin does not know (e.g. "adam_m.<name>") are ignored."""
        with torch.no_grad():
            for name, p in self.tinyds_parameters():
                if name not in tensors:
                    raise KeyError(f"{where}: parameter '{name}' is missing")
                value = tensors[name]
                if tuple(value.shape) != tuple(p.shape):
                    raise ValueError(f"{where}: parameter '{name}' has shape {list(value.shape)}, "
                                     f"the model expects {list(p.shape)}")
                p.copy_(torch.from_numpy(value).to(torch.float32))


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
