"""tests/reference/decode.py — kv-cache decoding and batched rollouts for the PyTorch twin (model.py), inference
only (torch.no_grad()), written from the model's math like model.py and reusing its parameters and helpers.

Shape legend: B sequences, T new tokens per sequence in one call (1 for a decode step), S = Tmax cached positions,
C d_model, V vocab, H heads, Hkv kv heads, D head dim; MLA: R rope dim. pos = positions already cached.

    Decoder(model, B, Tmax).step(tokens (B, T)) -> logits (B, T, V) of positions pos..pos+T-1, attending over the
    cache rows 0..pos+t, then pos += T. It equals model.forward's logits at those positions (up to float rounding;
    greedy_full below and the --check of bench_torch.py --rollout compare the tokens).

What each layer caches (the keys after RoPE, so a step only rotates its new rows):
    mha / gqa / mqa   k, v (B, Hkv, S, D)
    mla               the materialised per-head content keys k_C and values v (B, H, S, D) and the one shared rope
                      key k_R (B, S, R): MLA's "naive" cache (DESIGN 4.1). Caching the latent c_KV instead would
                      save memory but recompute k_C, v = c_KV W_UKV^T over all S rows every step, or need the
                      absorbed weights; this is the simple, fast eager form.
The MoE FFN runs the router and the expert loop of moe.py without the balance losses (inference has no losses).

rollout(model, prompts, ...) is the twin of tinyds/model/rollout.h's schedule: prompts left-aligned at position 0,
positions 0..Pmin-2 (every prompt still inside itself) prefilled in one step of T = Pmin-1 tokens, then one step of
one token per sequence per position, a sequence's next input forced to its prompt's next token until its prompt
is read, then sampled (multinomial of softmax(logits / temperature) over ids < n_tokens, or argmax when greedy).
It decodes the batch as given: tinyds also prefills a group's copies of one prompt once, deals the sequences to its
per-thread Decoders by prompt length and stops decoding finished rows, none of which changes a token.
"""
import math

import torch
import torch.nn.functional as F

from model import apply_rope, rms_norm, rope_tables
from moe import swiglu


class Decoder:
    """Incremental decoding of a TinyDS model for B sequences of up to Tmax positions (see the module header)."""

    def __init__(self, model, B, Tmax):
        cfg = model.cfg
        if Tmax > cfg.max_seq_len:
            raise ValueError(f"Decoder: Tmax {Tmax} exceeds max_seq_len {cfg.max_seq_len}")
        self.model, self.cfg, self.B, self.Tmax, self.pos = model, cfg, B, Tmax, 0
        mla = cfg.attention == "mla"
        rotated = cfg.rope_dim if mla else cfg.head_dim
        self.cos, self.sin = rope_tables(Tmax, rotated, cfg.rope_theta)    # (S, rotated/2) each
        H, D = cfg.n_head, cfg.head_dim
        self.cache = []
        for _ in model.layers:
            if mla:
                self.cache.append((torch.zeros(B, H, Tmax, D), torch.zeros(B, Tmax, cfg.rope_dim),
                                   torch.zeros(B, H, Tmax, D)))           # k_C, k_R, v
            else:
                self.cache.append((torch.zeros(B, cfg.n_kv_head, Tmax, D), torch.zeros(B, cfg.n_kv_head, Tmax, D)))

    def reset(self):
        self.pos = 0

    @torch.no_grad()
    def step(self, tokens):
        """tokens (B, T) int64 at positions pos..pos+T-1 -> logits (B, T, V)."""
        B, T = tokens.shape
        if self.pos + T > self.Tmax:
            raise ValueError(f"Decoder.step: positions up to {self.pos + T - 1} do not fit Tmax {self.Tmax}")
        m, eps = self.model, self.cfg.norm_eps
        cos, sin = self.cos[self.pos:self.pos + T], self.sin[self.pos:self.pos + T]   # (T, rotated/2)
        x = m.embed[tokens]                                                    # (B, T, C)
        for layer, cache in zip(m.layers, self.cache):
            a = rms_norm(x, layer.attn_norm, eps)
            attend = self.mla_step if self.cfg.attention == "mla" else self.dense_step
            h = x + attend(layer.attn, a, cache, cos, sin)
            u = rms_norm(h, layer.ffn_norm, eps)
            x = h + (moe_decode(layer.ffn, u) if layer.is_moe else layer.ffn(u))
        self.pos += T
        return m.output_head(x)                                                # (B, T, V)

    def causal_mask(self, T):
        """(T, pos+T) bool, True where new token t must not see cached row j (j > pos + t)."""
        j = torch.arange(self.pos + T)
        return j[None, :] > (self.pos + torch.arange(T))[:, None]

    def dense_step(self, attn, a, cache, cos, sin):
        """Attention (model.py's Attention) of the T new rows a (B, T, C) over the cache -> (B, T, C)."""
        B, T, _ = a.shape
        H, Hkv, D = attn.n_head, attn.n_kv_head, attn.head_dim
        group, end = H // Hkv, self.pos + T
        q = apply_rope((a @ attn.wq.t()).view(B, T, H, D), cos, sin)          # (B, T, H, D)
        k = apply_rope((a @ attn.wk.t()).view(B, T, Hkv, D), cos, sin)        # (B, T, Hkv, D)
        v = (a @ attn.wv.t()).view(B, T, Hkv, D)
        k_cache, v_cache = cache
        k_cache[:, :, self.pos:end] = k.transpose(1, 2)
        v_cache[:, :, self.pos:end] = v.transpose(1, 2)
        # Query head h reads kv head h // group: group the query heads under their kv head, no copy of the cache.
        q = q.view(B, T, Hkv, group, D).permute(0, 2, 3, 1, 4).reshape(B, Hkv, group * T, D)   # (B, Hkv, group*T, D)
        scores = (q @ k_cache[:, :, :end].transpose(-2, -1)) * (1.0 / math.sqrt(D))            # (B, Hkv, group*T, end)
        scores = scores.view(B, Hkv, group, T, end).masked_fill(self.causal_mask(T), float("-inf"))
        o = F.softmax(scores, dim=-1).view(B, Hkv, group * T, end) @ v_cache[:, :, :end]      # (B, Hkv, group*T, D)
        o = o.view(B, Hkv, group, T, D).permute(0, 3, 1, 2, 4).reshape(B, T, H * D)           # (B, T, H*D)
        return o @ attn.wo.t()

    def mla_step(self, attn, a, cache, cos, sin):
        """MLA (model.py's MLA, same formulas) of the T new rows a (B, T, C) over the cache -> (B, T, C)."""
        B, T, _ = a.shape
        H, D, R, L = attn.n_head, attn.head_dim, attn.rope_dim, attn.kv_lora_rank
        end = self.pos + T
        c_q = rms_norm(a @ attn.wq_a.t(), attn.q_norm, attn.eps)               # (B, T, Q)
        q = (c_q @ attn.wq_b.t()).view(B, T, H, D + R)
        q_c = q[..., :D].transpose(1, 2)                                       # (B, H, T, D)
        q_r = apply_rope(q[..., D:], cos, sin).transpose(1, 2)                 # (B, H, T, R)
        kv_a = a @ attn.wkv_a.t()                                              # (B, T, L+R)
        c_kv = rms_norm(kv_a[..., :L], attn.kv_norm, attn.eps)                 # (B, T, L)
        k_r = apply_rope(kv_a[..., L:].reshape(B, T, 1, R), cos, sin)[:, :, 0]   # (B, T, R)
        kv = (c_kv @ attn.wkv_b.t()).view(B, T, H, 2 * D)
        kc_cache, kr_cache, v_cache = cache
        kc_cache[:, :, self.pos:end] = kv[..., :D].transpose(1, 2)
        v_cache[:, :, self.pos:end] = kv[..., D:].transpose(1, 2)
        kr_cache[:, self.pos:end] = k_r
        scores = q_c @ kc_cache[:, :, :end].transpose(-2, -1)                  # (B, H, T, end) content
        scores = scores + q_r @ kr_cache[:, None, :end].transpose(-2, -1)      # + rope (one k_R for every head)
        scores = (scores * (1.0 / math.sqrt(D + R))).masked_fill(self.causal_mask(T), float("-inf"))
        o = F.softmax(scores, dim=-1) @ v_cache[:, :, :end]                    # (B, H, T, D)
        return o.transpose(1, 2).reshape(B, T, H * D) @ attn.wo.t()


def moe_decode(moe, u):
    """moe.py's MoE forward without the balance losses: u (B, T, C) -> (B, T, C)."""
    B, T, C = u.shape
    x = u.reshape(B * T, C)
    _, _, _, topk_idx, weights = moe.gate(x)                                   # (N, K) each
    routed = torch.zeros_like(x)
    for e in range(moe.cfg.n_routed_experts):
        token, slot = torch.nonzero(topk_idx == e, as_tuple=True)
        if token.numel():
            routed.index_add_(0, token, weights[token, slot, None] * moe.experts.expert(e, x[token]))
    out = routed if moe.shared_experts is None else routed + swiglu(x, moe.shared_experts.w1, moe.shared_experts.w3,
                                                                     moe.shared_experts.w2)
    return out.view(B, T, C)


def choose(logits, n_tokens, temperature, generator):
    """Next tokens (B) from logits (B, V): argmax (temperature 0) or a multinomial draw from
    softmax(logits / temperature), over ids < n_tokens only."""
    logits = logits[:, :n_tokens]
    if temperature == 0:
        return logits.argmax(dim=-1)
    return torch.multinomial(F.softmax(logits / temperature, dim=-1), 1, generator=generator)[:, 0]


def token_logprobs(logits, tokens, temperature):
    """log softmax(logits / tau)[token] over the full vocab, tau = temperature (1 when greedy), as tinyds's
    rollout records it.   logits (B, V), tokens (B) -> (B)."""
    tau = temperature if temperature > 0 else 1.0
    return F.log_softmax(logits / tau, dim=-1).gather(1, tokens[:, None])[:, 0]


@torch.no_grad()
def rollout(model, prompts, max_new_tokens, n_tokens, temperature=1.0, eos=None, pad=0, generator=None):
    """Completes every prompt (list of token-id lists, left-aligned) with a kv-cache Decoder; the schedule of the
    module header. eos=None never stops early (every sequence gets max_new_tokens). Returns the completions
    (list of lists), their log-probs (token_logprobs, list of lists) and the number of decoder steps taken."""
    B = len(prompts)
    lens = [len(p) for p in prompts]
    if max(lens) > model.cfg.max_seq_len:
        raise ValueError(f"rollout: a prompt of {max(lens)} tokens exceeds max_seq_len {model.cfg.max_seq_len}")
    Tmax = min(model.cfg.max_seq_len, max(lens) + max_new_tokens)
    dec = Decoder(model, B, Tmax)
    rows = torch.full((B, Tmax), pad, dtype=torch.long)                       # (B, Tmax) prompt, then completion
    for b, p in enumerate(prompts):
        rows[b, :len(p)] = torch.tensor(p)
    goal = [min(Tmax, n + max_new_tokens) for n in lens]                      # length at which b is done
    done = [lens[b] >= goal[b] for b in range(B)]                             # a prompt filling the context
    out = [[] for _ in range(B)]
    lps = [[] for _ in range(B)]
    pre = min(lens) - 1                                                        # positions every prompt has to read
    steps = 0
    if pre > 0:
        dec.step(rows[:, :pre])
        steps += 1
    for p in range(pre, Tmax - 1):
        if all(done):
            break
        logits = dec.step(rows[:, p:p + 1])[:, 0]                              # (B, V) predicts position p+1
        steps += 1
        nxt = choose(logits, n_tokens, temperature, generator)                # (B)
        lp = token_logprobs(logits, nxt, temperature).tolist()                 # (B)
        nxt = nxt.tolist()
        for b in range(B):
            if done[b] or p + 1 < lens[b]:
                continue                                                       # finished, or reading its prompt
            tok = nxt[b]
            rows[b, p + 1] = tok
            out[b].append(tok)
            lps[b].append(lp[b])
            if p + 2 >= goal[b] or tok == eos:
                done[b] = True
    return out, lps, steps


@torch.no_grad()
def greedy_full(model, prompts, max_new_tokens, n_tokens):
    """Greedy completions recomputing the whole forward for every new token (model.forward, no cache): what
    rollout(..., temperature=0) must equal. Returns the completions and their log-probs (lists of lists)."""
    out, lps = [], []
    for p in prompts:
        seq, lp = list(p), []
        for _ in range(min(max_new_tokens, model.cfg.max_seq_len - len(p))):
            logits, _ = model(torch.tensor([seq]))                             # (1, len, V)
            tok = logits[0, -1:, :n_tokens].argmax(dim=-1)                     # (1)
            lp.append(float(token_logprobs(logits[0, -1:], tok, 0)[0]))
            seq.append(int(tok))
        out.append(seq[len(p):])
        lps.append(lp)
    return out, lps
