"""tests/reference/config.py — the model configuration of the PyTorch twin, and tinyds's presets.

The field names and meanings are tinyds's (tinyds/model/config.h); a tinyds checkpoint stores them as the JSON
string __metadata__["config"] = {"name", "model": {...}, "train": {...}, "data": {...}}.
Only the "model" part decides the network; the twin implements the dense-FFN model with MHA / GQA / MQA or
MLA attention, so an unknown model field is an error rather than something silently ignored.

Shape legend: V vocab, C d_model, H n_head, Hkv n_kv_head, D head_dim, F ffn_hidden,
Q q_lora_rank, L kv_lora_rank, R rope_dim (the last three are MLA's; tinyds writes 0 for mha / gqa / mqa).
"""
import copy
import json
from dataclasses import asdict, dataclass, fields


@dataclass
class ModelConfig:
    vocab_size: int = 128      # V
    max_seq_len: int = 256     # longest sequence (RoPE positions)
    n_layer: int = 4
    d_model: int = 256         # C
    attention: str = "mha"     # "mha" (Hkv = H), "gqa" (1 < Hkv < H), "mqa" (Hkv = 1), "mla" (latent attention)
    n_head: int = 8            # H
    n_kv_head: int = 8         # Hkv; MLA does not use it (every head has its own k_C, v) and tinyds requires H
    head_dim: int = 32         # D: dense head dim; for MLA the content ("nope") part of q/k and the value dim
    q_lora_rank: int = 0       # Q, MLA query latent rank (d_c'), e.g. 8 for nano; 0 for dense attention
    kv_lora_rank: int = 0      # L, MLA key/value latent rank (d_c), e.g. 12 for nano; 0 for dense attention
    rope_dim: int = 0          # R, MLA rope dim of q_R and the shared k_R, even, e.g. 4 for nano; 0 for dense
    ffn_hidden: int = 683      # F
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02

    @staticmethod
    def from_dict(d, where="config"):
        """Builds and validates a ModelConfig from the "model" object of a tinyds config (or a whole config)."""
        if "model" in d and isinstance(d["model"], dict):
            d = d["model"]
        known = {f.name for f in fields(ModelConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where}: unknown model field(s) {unknown}; the PyTorch twin implements only "
                             f"{sorted(known)} (extend tests/reference/model.py for new architecture fields)")
        cfg = ModelConfig(**d)
        cfg.validate(where)
        return cfg

    def validate(self, where="config"):
        def need(ok, field, why):
            if not ok:
                raise ValueError(f"{where}: model.{field} = {getattr(self, field)!r}: {why}")

        def is_int(name, low):
            value = getattr(self, name)
            return isinstance(value, int) and not isinstance(value, bool) and value >= low
        for name in ("vocab_size", "max_seq_len", "n_layer", "d_model", "n_head", "n_kv_head", "head_dim",
                     "ffn_hidden"):
            need(is_int(name, 1), name, "must be a positive int")
        need(self.attention in ("mha", "gqa", "mqa", "mla"), "attention", "must be one of mha, gqa, mqa, mla")
        # The same rules as tinyds's Config::validate, so that the twin accepts exactly the configs tinyds does.
        if self.attention == "mla":
            for name in ("q_lora_rank", "kv_lora_rank", "rope_dim"):
                need(is_int(name, 1), name, "must be a positive int for attention 'mla'")
            need(self.rope_dim % 2 == 0, "rope_dim", "must be even (RoPE rotates pairs)")
            need(self.n_kv_head == self.n_head, "n_kv_head", f"must equal n_head = {self.n_head} for attention "
                                                              f"'mla' (unused: each head has its own k_C and v)")
        else:
            for name in ("q_lora_rank", "kv_lora_rank", "rope_dim"):
                need(getattr(self, name) == 0, name, f"is only used with attention 'mla' (0 for '{self.attention}')")
            need(self.head_dim % 2 == 0, "head_dim", "must be even (RoPE rotates pairs)")
            need(self.n_head % self.n_kv_head == 0, "n_kv_head", f"must divide n_head = {self.n_head}")
            kv_rule = {"mha": self.n_kv_head == self.n_head, "gqa": 1 < self.n_kv_head < self.n_head,
                       "mqa": self.n_kv_head == 1}
            need(kv_rule[self.attention], "n_kv_head", f"does not fit attention '{self.attention}' "
                                                       f"with n_head = {self.n_head}")
        for name in ("rope_theta", "norm_eps", "init_std"):
            need(float(getattr(self, name)) > 0, name, "must be positive")


# tinyds's TrainConfig / DataConfig defaults (tinyds/model/config.h), written into checkpoints made in Python so
# that they carry the same config JSON as tinyds's own.
TRAIN_DEFAULTS = {"batch_size": 16, "seq_len": 128, "steps": 1000, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 50,
                  "beta1": 0.9, "beta2": 0.95, "adam_eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0,
                  "eval_every": 200, "eval_problems": 200, "ckpt_every": 500, "log_every": 10, "seed": 1337}
DATA_DEFAULTS = {"levels": [1], "n_train": 20000, "drill_frac": 0.0}

# The presets of tinyds/model/config.cpp (Config::preset): model fields and train/data overrides.
PRESETS = {
    "nano": {
        "model": dict(n_layer=2, d_model=32, attention="gqa", n_head=4, n_kv_head=2, head_dim=8, ffn_hidden=64,
                      max_seq_len=64),
        "train": dict(batch_size=2, seq_len=16, steps=20, warmup_steps=2, eval_every=0, ckpt_every=0,
                      log_every=5, eval_problems=20),
        "data": dict(n_train=200),
    },
    "small": {
        "model": dict(n_layer=4, d_model=128, n_head=4, n_kv_head=4, head_dim=32, ffn_hidden=352, max_seq_len=160),
        "train": dict(batch_size=32, seq_len=128, steps=3000, lr=3e-3, min_lr=1e-4, warmup_steps=100,
                      eval_every=500, eval_problems=200, ckpt_every=1000, log_every=50),
        "data": dict(n_train=100000),
    },
    "base": {
        "model": dict(n_layer=4, d_model=256, n_head=8, n_kv_head=8, head_dim=32, ffn_hidden=683, max_seq_len=128),
        "train": dict(batch_size=16, seq_len=128),
        "data": {},
    },
}


# MLA dims for a preset's shape switched to attention "mla": those of the MLA golden test
# (tinyds init --preset nano --attention mla --q-lora-rank 8 --kv-lora-rank 12 --rope-dim 4). Other presets
# have no agreed MLA dims here: pass them explicitly.
MLA_DIMS = {"nano": dict(q_lora_rank=8, kv_lora_rank=12, rope_dim=4)}


def preset(name, **model_overrides):
    """The whole tinyds config (as the dict config_to_json writes) of a named preset, with optional model field
    overrides (e.g. attention="mla", q_lora_rank=8, kv_lora_rank=12, rope_dim=4), validated."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}' (known presets: {', '.join(PRESETS)})")
    p = PRESETS[name]
    model = ModelConfig(**{**p["model"], **model_overrides})
    model.validate(f"preset {name}")
    train = {**TRAIN_DEFAULTS, **p["train"]}
    data = {**copy.deepcopy(DATA_DEFAULTS), **p["data"]}
    return {"name": name, "model": asdict(model), "train": train, "data": data}


def config_json(full_config):
    """The string stored in a checkpoint's __metadata__["config"]."""
    return json.dumps(full_config)
