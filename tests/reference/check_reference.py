#!/usr/bin/python3
"""tests/reference/check_reference.py — self-tests of the PyTorch twin and the safetensors reader/writer.

    /usr/bin/python3 tests/reference/check_reference.py        (a few seconds; exits 1 on the first failure)

The golden files are only as good as the twin, so its pieces are checked against second, differently written
versions of the same math: RoPE as a complex multiply (DeepSeek-V3's view_as_complex), attention as per-head
loops, MLA as its absorbed form (W_UK folded into the query, W_UV into the output, DESIGN 4.1) with RoPE as a
complex multiply, the masked loss via F.cross_entropy(ignore_index=-1), RMSNorm via torch.linalg.vector_norm;
also that the causal mask holds for dense and MLA attention (a future token cannot change an earlier logit), that
the config accepts MLA's fields and rejects bad ones, that load_state refuses a missing or misshapen parameter and
ignores optimizer tensors, and that the safetensors reader round-trips every dtype and rejects malformed files.
The MoE layer, balance losses, bias update and MTP modules have their own checks in check_moe_mtp.py, run here too.
"""
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import check_moe_mtp
from config import MLA_DIMS, ModelConfig, config_json, preset
from model import TinyDS, apply_rope, load_state, masked_cross_entropy, rms_norm, rope_tables
from safetensors_io import SafetensorsError, read_safetensors, write_safetensors

from check_util import TOL, expect_close, expect_raises  # noqa: F401  (TOL: the float64 tolerance, see there)




def rope_complex(x, theta):
    """Second RoPE: the interleaved pairs of x (B, T, nh, D) as complex numbers times exp(j t theta^(-2i/D)),
    angles in float64 straight from the formula, positions t = 0..T-1. Returns x's dtype."""
    B, T, nh, D = x.shape
    angle = torch.tensor([[t * theta ** (-2.0 * i / D) for i in range(D // 2)] for t in range(T)],
                         dtype=torch.float64)                                       # (T, D/2)
    rot = torch.polar(torch.ones_like(angle), angle)                               # (T, D/2) complex128
    z = torch.view_as_complex(x.double().reshape(B, T, nh, D // 2, 2).contiguous())  # (B, T, nh, D/2)
    return torch.view_as_real(z * rot[None, :, None, :]).reshape(B, T, nh, D).to(x.dtype)


def check_rope():
    B, T, nh, D, theta = 2, 7, 3, 8, 10000.0
    x = torch.randn(B, T, nh, D, dtype=torch.float64)
    cos, sin = rope_tables(T, D, theta)
    got = apply_rope(x, cos.double(), sin.double())
    expect_close("RoPE vs complex multiply", got, rope_complex(x, theta), tol=1e-6)  # float32 tables: ~6e-8 each


def check_attention_and_norm():
    cfg = preset("nano")["model"]                                   # GQA: H 4, Hkv 2
    model = TinyDS(cfg).double()
    attn, D, H, Hkv = model.layers[0].attn, cfg["head_dim"], cfg["n_head"], cfg["n_kv_head"]
    B, T, C = 2, 5, cfg["d_model"]
    a = torch.randn(B, T, C, dtype=torch.float64)
    cos, sin = (z.double() for z in rope_tables(T, D, cfg["rope_theta"]))
    got = attn(a, cos, sin)
    q = apply_rope((a @ attn.wq.t()).view(B, T, H, D), cos, sin)
    k = apply_rope((a @ attn.wk.t()).view(B, T, Hkv, D), cos, sin)
    v = (a @ attn.wv.t()).view(B, T, Hkv, D)
    o = torch.zeros(B, T, H, D, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            kv = h // (H // Hkv)
            for t in range(T):
                s = torch.stack([q[b, t, h] @ k[b, j, kv] / math.sqrt(D) for j in range(t + 1)])
                p = torch.exp(s - s.max()) / torch.exp(s - s.max()).sum()
                o[b, t, h] = sum(p[j] * v[b, j, kv] for j in range(t + 1))
    expect_close("attention vs per-head loops", got, o.reshape(B, T, H * D) @ attn.wo.t())

    x, w = torch.randn(3, C, dtype=torch.float64), torch.randn(C, dtype=torch.float64)
    want = x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) / math.sqrt(C)) * w   # eps 0
    expect_close("RMSNorm", rms_norm(x, w, 0.0), want)


def mla_preset():
    return preset("nano", attention="mla", n_kv_head=4, **MLA_DIMS["nano"])      # C 32, H 4, D 8, Q 8, L 12, R 4


@torch.no_grad()
def mla_absorbed(attn, a, theta):
    """Second MLA (DESIGN 4.1, the "absorb" decode form), written per head from the weight row blocks: W_UK[h] is
    folded into the query, q_lat = W_UK[h]^T q_C (L), scored against c_KV directly; the probabilities average c_KV
    into o_lat (L), and W_UV[h] is applied after: o = W_UV[h] o_lat. k_C and v are never formed. RoPE here is
    rope_complex. a (B, T, C) -> (B, T, C)."""
    B, T, C = a.shape
    H, D, R, L = attn.n_head, attn.head_dim, attn.rope_dim, attn.kv_lora_rank
    c_q = rms_norm(a @ attn.wq_a.t(), attn.q_norm, attn.eps)                       # (B, T, Q)
    ckv_kr = a @ attn.wkv_a.t()                                                    # (B, T, L+R)
    c_kv = rms_norm(ckv_kr[..., :L], attn.kv_norm, attn.eps)                       # (B, T, L)
    k_r = rope_complex(ckv_kr[..., L:].reshape(B, T, 1, R), theta).reshape(B, T, R)   # (B, T, R)
    causal = torch.ones(T, T, dtype=torch.bool).tril()                             # (T, T): j <= t
    heads = []
    for h in range(H):
        w_uq = attn.wq_b[h * (D + R):h * (D + R) + D]                              # (D, Q)
        w_qr = attn.wq_b[h * (D + R) + D:(h + 1) * (D + R)]                        # (R, Q)
        w_uk = attn.wkv_b[2 * h * D:2 * h * D + D]                                 # (D, L)
        w_uv = attn.wkv_b[2 * h * D + D:2 * (h + 1) * D]                           # (D, L)
        q_lat = (c_q @ w_uq.t()) @ w_uk                                            # (B, T, L) = W_UK^T q_C
        q_r = rope_complex((c_q @ w_qr.t()).reshape(B, T, 1, R), theta).reshape(B, T, R)   # (B, T, R)
        s = (q_lat @ c_kv.transpose(1, 2) + q_r @ k_r.transpose(1, 2)) / math.sqrt(D + R)  # (B, T, T)
        s = torch.where(causal, s, torch.full_like(s, -math.inf))
        p = torch.exp(s - s.max(dim=-1, keepdim=True).values)                      # exp(-inf) = 0 for j > t
        p = p / p.sum(dim=-1, keepdim=True)                                        # (B, T, T)
        heads.append((p @ c_kv) @ w_uv.t())                                        # (B, T, D) = W_UV o_lat
    return torch.cat(heads, dim=-1) @ attn.wo.t()                                  # (B, T, C)


def check_mla_absorbed():
    """The twin's MLA (naive: k_C, v materialised) against the absorbed form, with weights of unit-scale outputs
    (std 1/sqrt(fan_in), norm gains in [0.5, 1.5]) so that the tolerances below are relative to O(1) values."""
    cfg = mla_preset()["model"]
    worst = {}
    for dtype, tol in ((torch.float64, TOL), (torch.float32, 1e-5)):
        # float32: both forms round differently (the absorbed one sums over L = 12 instead of D = 8 and applies
        # W_UV after the average); observed ~1e-7 relative, a mistake (wrong row block, rope on the wrong part,
        # scale 1/sqrt(D)) is >= 1e-2.
        model = TinyDS(cfg).to(dtype)
        attn = model.layers[0].attn
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in attn.parameters():
                if p.dim() == 2:
                    p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) / math.sqrt(p.shape[1]))
                else:
                    p.copy_(0.5 + torch.rand(p.shape, generator=g, dtype=dtype))
        B, T = 2, 11
        a = torch.randn(B, T, cfg["d_model"], generator=g, dtype=dtype)
        cos, sin = rope_tables(T, cfg["rope_dim"], cfg["rope_theta"], dtype=dtype)   # float64: exact angles
        with torch.no_grad():
            got = attn(a, cos, sin)
        want = mla_absorbed(attn, a, cfg["rope_theta"])
        scale = want.abs().max().item()
        expect_close(f"MLA naive vs absorbed ({dtype})", got / scale, want / scale, tol=tol)
        worst[f"absorbed {str(dtype).replace('torch.', '')}"] = ((got - want).abs().max() / scale).item()
    return worst


def check_mla_model_wiring():
    """The whole MLA model against the same network composed by hand around mla_absorbed: catches RoPE tables of
    the wrong width (D instead of R) or a layer wired to the wrong norm. The model's RoPE tables are float32-rounded
    (golden.py's), the absorbed form's angles exact: ~1e-8 relative in float64; a wrong width is >= 1e-2."""
    model = TinyDS(mla_preset()["model"]).double()
    cfg, g = model.cfg, torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(p.shape[-1])
                    if p.dim() == 2 else 0.5 + torch.rand(p.shape, generator=g, dtype=torch.float64))
        tokens = torch.randint(0, cfg.vocab_size, (2, 10), generator=g)
        got, _ = model(tokens)
        x = model.embed[tokens]                                                    # (B, T, C)
        for layer in model.layers:
            h = x + mla_absorbed(layer.attn, rms_norm(x, layer.attn_norm, cfg.norm_eps), cfg.rope_theta)
            x = h + layer.ffn(rms_norm(h, layer.ffn_norm, cfg.norm_eps))
        want = rms_norm(x, model.norm, cfg.norm_eps) @ model.head.t()              # (B, T, V)
    scale = want.abs().max().item()
    expect_close("MLA model vs hand-composed absorbed layers", got / scale, want / scale, tol=1e-6)
    return {"model float64": ((got - want).abs().max() / scale).item()}


def check_causal_and_loss():
    for full in (preset("nano"), mla_preset()):
        model = TinyDS(full["model"]).double()
        tokens = torch.randint(0, 128, (2, 9))
        changed = tokens.clone()
        changed[:, 6] = (changed[:, 6] + 1) % 128
        a, _ = model(tokens)
        b, _ = model(changed)
        kind = full["model"]["attention"]
        expect_close(f"{kind}: logits before the changed position", a[:, :6], b[:, :6], tol=0.0)
        if (a[:, 6:] - b[:, 6:]).abs().max() == 0:
            raise AssertionError(f"{kind}: changing token 6 did not change logits at positions >= 6")
    targets = torch.randint(0, 128, (2, 9))
    targets[0, 2] = targets[1, 0] = targets[1, 8] = -1
    want = F.cross_entropy(a.reshape(-1, 128), targets.reshape(-1), ignore_index=-1)
    expect_close("masked cross-entropy", masked_cross_entropy(a, targets), want)


def check_config():
    """MLA fields (tinyds's rules): positive ranks, even R and n_kv_head = n_head for mla, zeros for dense kinds;
    a bad value is an error naming the field."""
    base = preset("nano")["model"]
    ModelConfig.from_dict({**base, "q_lora_rank": 0, "kv_lora_rank": 0, "rope_dim": 0})   # dense: zeros are fine
    expect_raises("dense with rope_dim", ValueError, lambda: ModelConfig.from_dict({**base, "rope_dim": 4}),
                  "model.rope_dim")
    mla = mla_preset()["model"]
    ModelConfig.from_dict(mla)
    expect_raises("mla with n_kv_head < n_head", ValueError, lambda: ModelConfig.from_dict({**mla, "n_kv_head": 2}),
                  "model.n_kv_head")
    expect_raises("mla without kv_lora_rank", ValueError, lambda: ModelConfig.from_dict({**mla, "kv_lora_rank": 0}),
                  "model.kv_lora_rank")
    expect_raises("odd rope_dim", ValueError, lambda: ModelConfig.from_dict({**mla, "rope_dim": 3}), "model.rope_dim")
    expect_raises("unknown attention", ValueError, lambda: ModelConfig.from_dict({**mla, "attention": "mlx"}),
                  "model.attention")
    expect_raises("unknown field", ValueError, lambda: ModelConfig.from_dict({**mla, "qk_rope_dim": 4}),
                  "qk_rope_dim")


def check_safetensors_and_loading(tmp):
    path = os.path.join(tmp, "t.safetensors")
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1.5, -2.0], np.float64),
               "c": np.array([[7, -1]], np.int32), "d": np.array([2 ** 40], np.int64), "e": np.zeros((0, 4), np.float32)}
    write_safetensors(path, tensors, {"k": "v"})
    back, meta = read_safetensors(path)
    assert meta == {"k": "v"}, meta
    for name, value in tensors.items():
        if back[name].dtype != value.dtype or not np.array_equal(back[name], value):
            raise AssertionError(f"safetensors round trip changed tensor '{name}'")
    with open(path, "rb") as f:
        blob = f.read()
    assert (8 + struct.unpack("<Q", blob[:8])[0]) % 8 == 0, "data block not 8-byte aligned"

    def write_raw(header, data):
        text = json.dumps(header).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + data)
        return lambda: read_safetensors(path)
    f32 = {"dtype": "F32", "shape": [2]}
    expect_raises("trailing bytes", SafetensorsError, write_raw({"x": {**f32, "data_offsets": [0, 8]}}, bytes(12)),
                  "trailing")
    expect_raises("overlap", SafetensorsError, write_raw({"x": {**f32, "data_offsets": [0, 8]},
                                                          "y": {**f32, "data_offsets": [4, 12]}}, bytes(12)), "overlaps")
    expect_raises("shape mismatch", SafetensorsError, write_raw({"x": {**f32, "data_offsets": [0, 4]}}, bytes(4)),
                  "needs 8")
    expect_raises("unknown dtype", SafetensorsError,
                  write_raw({"x": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)), "BF16")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 1000) + b"{}")
    expect_raises("header past the end", SafetensorsError, lambda: read_safetensors(path), "past the end")

    # load_state: optimizer tensors are ignored; a missing or misshapen parameter is an error naming it.
    cfg = preset("nano")
    model = TinyDS(cfg["model"])
    params = {n: p.detach().numpy() for n, p in model.named_parameters()}
    meta = {"config": config_json(cfg)}
    write_safetensors(path, {**params, "adam_m.embed": params["embed"]}, meta)
    loaded, _ = load_state(path)
    for n, p in loaded.named_parameters():
        if not np.array_equal(p.detach().numpy(), params[n]):
            raise AssertionError(f"load_state changed parameter '{n}'")
    write_safetensors(path, {n: v for n, v in params.items() if n != "layers.1.ffn.w3"}, meta)
    expect_raises("missing parameter", KeyError, lambda: load_state(path), "layers.1.ffn.w3")
    write_safetensors(path, {**params, "layers.0.attn.wk": np.zeros((8, 32), np.float32)}, meta)
    expect_raises("wrong shape", ValueError, lambda: load_state(path), "layers.0.attn.wk")

    # The same for an MLA checkpoint: its own parameter names, a dense name is not enough.
    cfg = mla_preset()
    params = {n: p.detach().numpy() for n, p in TinyDS(cfg["model"]).named_parameters()}
    meta = {"config": config_json(cfg)}
    write_safetensors(path, params, meta)
    loaded, _ = load_state(path)
    if loaded.cfg.attention != "mla" or sorted(n for n, _ in loaded.named_parameters()) != sorted(params):
        raise AssertionError("load_state did not rebuild the MLA model from its checkpoint")
    write_safetensors(path, {n: v for n, v in params.items() if n != "layers.0.attn.kv_norm"}, meta)
    expect_raises("missing MLA parameter", KeyError, lambda: load_state(path), "layers.0.attn.kv_norm")
    write_safetensors(path, {**params, "layers.1.attn.wkv_a": np.zeros((12, 32), np.float32)}, meta)
    expect_raises("wrong MLA shape", ValueError, lambda: load_state(path), "layers.1.attn.wkv_a")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    checks = [check_rope, check_attention_and_norm, check_mla_absorbed, check_mla_model_wiring,
              check_causal_and_loss, check_config] + check_moe_mtp.CHECKS
    observed = {}   # the MLA checks return their observed relative errors, printed for the record
    for check in checks:
        observed.update(check() or {})
    with tempfile.TemporaryDirectory() as tmp:
        check_safetensors_and_loading(tmp)
        check_moe_mtp.check_ds_loading(tmp)
    errors = ", ".join(f"{k} {v:.1e}" for k, v in observed.items())
    print(f"check_reference: all {len(checks) + 2} checks passed (MLA vs absorbed form, relative: {errors})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
