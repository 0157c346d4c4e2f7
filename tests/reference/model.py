"""tests/reference/model.py — an independent PyTorch twin of the tinyds dense model.

Written from the model's math (DESIGN.md section 4), not translated from the C++: autograd supplies every
gradient, so tinyds's hand-written backward passes can be checked against it (tests/reference/golden.py).

Shape legend: B batch, T time, C d_model, V vocab, H query heads, Hkv key/value heads, D head_dim, F ffn_hidden.

    x = embed[tokens]                                   (B, T, C)
    for each layer:
        h = x + Attention(RMSNorm(x; attn_norm))        pre-norm residual blocks
        x = h + FeedForward(RMSNorm(h; ffn_norm))
    logits = RMSNorm(x; norm) @ head^T                  (B, T, V)   head is untied from embed (DeepSeek-V3)

Parameter names equal tinyds's (tinyds/model/params.h): model.named_parameters() yields "embed",
"layers.0.attn_norm", "layers.0.attn.wq", ..., "norm", "head", with the same shapes, so a tinyds checkpoint
loads by name. Matrices are stored (out_features, in_features) like nn.Linear: y = x @ w^T.
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


def rope_tables(T, D, theta):
    """cos, sin (T, D/2) of the RoPE angles t * theta^(-2i/D) for positions t = 0..T-1 and pairs i = 0..D/2-1.
    The angles are computed in float64 and rounded once to float32, the most accurate float32 table."""
    i = torch.arange(D // 2, dtype=torch.float64)                   # (D/2)
    inv_freq = theta ** (-2.0 * i / D)                               # (D/2)
    t = torch.arange(T, dtype=torch.float64)                         # (T)
    angle = torch.outer(t, inv_freq)                                 # (T, D/2)
    return angle.cos().float(), angle.sin().float()


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
        self.attn = Attention(cfg)
        self.ffn_norm = nn.Parameter(torch.empty(cfg.d_model))        # (C)
        self.ffn = FeedForward(cfg)

    def forward(self, x, cos, sin):
        """x (B, T, C) -> (B, T, C)."""
        h = x + self.attn(rms_norm(x, self.attn_norm, self.eps), cos, sin)
        return h + self.ffn(rms_norm(h, self.ffn_norm, self.eps))


class TinyDS(nn.Module):
    """The dense tinyds language model. Build from a ModelConfig (or its dict), or load_state(path)."""

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
        1/sqrt(2 n_layer) (GPT-2's residual scaling), norm gains 1. Used by benchmarks and random checkpoints;
        golden tests always start from weights loaded from a checkpoint."""
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
        cos, sin = rope_tables(T, self.cfg.head_dim, self.cfg.rope_theta)      # (T, D/2) each
        x = self.embed[tokens]                                                 # (B, T, C)
        for layer in self.layers:
            x = layer(x, cos, sin)                                             # (B, T, C)
        logits = rms_norm(x, self.norm, self.cfg.norm_eps) @ self.head.t()    # (B, T, V)
        loss = None if targets is None else masked_cross_entropy(logits, targets)
        return logits, loss

    def tinyds_parameters(self):
        """[(name, parameter)] in tinyds's layout order (tinyds/model/params.h). named_parameters() yields the same
        set in another order (a module's own parameters before its children's)."""
        per_layer = ["attn_norm", "attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn_norm", "ffn.w1", "ffn.w3", "ffn.w2"]
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
