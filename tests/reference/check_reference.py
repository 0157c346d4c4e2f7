#!/usr/bin/python3
"""tests/reference/check_reference.py — self-tests of the PyTorch twin and the safetensors reader/writer.

    /usr/bin/python3 tests/reference/check_reference.py        (a few seconds; exits 1 on the first failure)

The golden files are only as good as the twin, so its pieces are checked against second, differently written
versions of the same math: RoPE as a complex multiply (DeepSeek-V3's view_as_complex), attention as per-head
loops, the masked loss via F.cross_entropy(ignore_index=-1), RMSNorm via torch.linalg.vector_norm; also that the
causal mask holds (a future token cannot change an earlier logit), that load_state refuses a missing or misshapen
parameter and ignores optimizer tensors, and that the safetensors reader round-trips every dtype and rejects
malformed files.
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

from config import config_json, preset
from model import TinyDS, apply_rope, load_state, masked_cross_entropy, rms_norm, rope_tables
from safetensors_io import SafetensorsError, read_safetensors, write_safetensors

# float64 everywhere below: the two versions differ only by rounding, ~1e-15 relative; 1e-10 leaves room for
# accumulation over a few hundred terms and is still far below any real mistake (a wrong angle, head or mask
# gives O(1e-2) or more).
TOL = 1e-10


def expect_close(what, a, b, tol=TOL):
    err = (a - b).abs().max().item()
    if not err <= tol:
        raise AssertionError(f"{what}: differs by {err:.3e} (allowed {tol:.1e})")


def expect_raises(what, exc_type, fn, needle):
    try:
        fn()
    except exc_type as e:
        if needle not in str(e):
            raise AssertionError(f"{what}: error message {str(e)!r} does not mention {needle!r}") from None
        return
    raise AssertionError(f"{what}: expected {exc_type.__name__}, nothing was raised")


def check_rope():
    B, T, nh, D, theta = 2, 7, 3, 8, 10000.0
    x = torch.randn(B, T, nh, D, dtype=torch.float64)
    cos, sin = rope_tables(T, D, theta)
    got = apply_rope(x, cos.double(), sin.double())
    # Second version: complex pairs times exp(j * t * theta^(-2i/D)), angles straight from the formula.
    angle = torch.tensor([[t * theta ** (-2.0 * i / D) for i in range(D // 2)] for t in range(T)])
    rot = torch.polar(torch.ones_like(angle), angle)                               # (T, D/2) complex
    z = torch.view_as_complex(x.reshape(B, T, nh, D // 2, 2).contiguous())        # (B, T, nh, D/2)
    want = torch.view_as_real(z * rot[None, :, None, :]).reshape(B, T, nh, D)
    expect_close("RoPE vs complex multiply", got, want, tol=1e-6)  # tables are float32-rounded: ~6e-8 each


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


def check_causal_and_loss():
    model = TinyDS(preset("nano")["model"]).double()
    tokens = torch.randint(0, 128, (2, 9))
    changed = tokens.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 128
    a, _ = model(tokens)
    b, _ = model(changed)
    expect_close("logits before the changed position", a[:, :6], b[:, :6], tol=0.0)
    if (a[:, 6:] - b[:, 6:]).abs().max() == 0:
        raise AssertionError("changing token 6 did not change logits at positions >= 6")
    targets = torch.randint(0, 128, (2, 9))
    targets[0, 2] = targets[1, 0] = targets[1, 8] = -1
    want = F.cross_entropy(a.reshape(-1, 128), targets.reshape(-1), ignore_index=-1)
    expect_close("masked cross-entropy", masked_cross_entropy(a, targets), want)


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


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    checks = [check_rope, check_attention_and_norm, check_causal_and_loss]
    for check in checks:
        check()
    with tempfile.TemporaryDirectory() as tmp:
        check_safetensors_and_loading(tmp)
    print(f"check_reference: all {len(checks) + 1} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
