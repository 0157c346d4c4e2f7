"""tests/reference/config.py — the model configuration of the PyTorch twin, and tinyds's presets.

The field names and meanings are tinyds's (tinyds/model/config.h); a tinyds checkpoint stores them as the JSON
string __metadata__["config"] = {"name", "model": {...}, "train": {...}, "data": {...}}.
Only the "model" part decides the network; the twin implements MHA / GQA / MQA or MLA attention, dense SwiGLU or
MoE FFNs (routed + shared experts, DESIGN 4.2-4.3) and Multi-Token Prediction (DESIGN 4.4), so an unknown model
field is an error rather than something silently ignored.

Shape legend: V vocab, C d_model, H n_head, Hkv n_kv_head, D head_dim, F ffn_hidden,
Q q_lora_rank, L kv_lora_rank, R rope_dim (the last three are MLA's; tinyds writes 0 for mha / gqa / mqa),
E n_routed_experts, K n_activated_experts, Ns n_shared_experts, Fe moe_inter_dim, Dmtp mtp_depth.
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
    # Mixture of experts (DESIGN 4.2, 4.3; DeepSeek-V3 arXiv 2412.19437 section 2.1.2). Defaults keep a dense model.
    n_routed_experts: int = 0      # E routed experts, e.g. 4 for nano_ds; 0 = the dense FFN in every layer
    n_activated_experts: int = 2   # K routed experts per token, e.g. 2
    n_shared_experts: int = 1      # Ns shared experts (one SwiGLU of hidden Ns*Fe), e.g. 1; 0 = none
    moe_inter_dim: int = 128       # Fe hidden width of one expert, e.g. 16 for nano_ds
    n_dense_layers: int = 1        # the first n_dense_layers layers keep the dense FFN (ffn_hidden); the rest MoE
    score_func: str = "sigmoid"    # router scores: "sigmoid" (V3) or "softmax" over E (DeepSeekMoE, V2)
    route_scale: float = 1.0       # g_k *= route_scale (V3 Eq. 13 as in its code)
    n_expert_groups: int = 1       # group-limited routing: E experts in n_expert_groups groups (<= 1: off)
    n_limited_groups: int = 1      # only the n_limited_groups best groups are eligible
    balance: str = "bias"          # "none" or a '+'-joined set of "bias", "seqaux", "aux", e.g. "bias+seqaux"
    bias_update_speed: float = 0.001   # gamma of the after-step bias update (V3 section 2.1.2)
    seq_aux_alpha: float = 1e-4    # alpha of the sequence-wise balance loss (V3 Eq. 17), if balance has seqaux
    aux_alpha: float = 1e-2        # alpha of the expert-level balance loss (DeepSeekMoE), if balance has aux
    # Multi-Token Prediction (DESIGN 4.4; V3 section 2.2, Eq. 21-25)
    mtp_depth: int = 0             # Dmtp MTP modules, e.g. 1; 0 = no MTP
    mtp_lambda: float = 0.3        # L_MTP = (mtp_lambda / Dmtp) sum_k L_k (V3 Eq. 25)

    def balance_terms(self):
        """The set of balance mechanisms named by `balance` ("none" -> empty set)."""
        return set() if self.balance == "none" else set(self.balance.split("+"))

    def is_moe_layer(self, layer):
        """Main layer `layer` (0-based) has an MoE FFN: experts exist and it is past the first n_dense_layers."""
        return self.n_routed_experts > 0 and layer >= self.n_dense_layers

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
        self.validate_moe_mtp(need, is_int)

    def validate_moe_mtp(self, need, is_int):
        """The MoE / MTP rules (tinyds's Config::validate for the fields of the MoE + MTP spec). Dimensions of the
        experts are checked only when experts exist (E > 0), so a dense config may carry any defaults."""
        for name in ("n_routed_experts", "n_shared_experts", "n_dense_layers", "mtp_depth"):
            need(is_int(name, 0), name, "must be an int >= 0")
        for name in ("n_activated_experts", "moe_inter_dim", "n_expert_groups", "n_limited_groups"):
            need(is_int(name, 1), name, "must be a positive int")
        need(self.score_func in ("sigmoid", "softmax"), "score_func", "must be sigmoid or softmax")
        parts = self.balance.split("+") if isinstance(self.balance, str) else [None]
        need(self.balance == "none" or (all(p in ("bias", "seqaux", "aux") for p in parts)
                                        and len(set(parts)) == len(parts)),
             "balance", "must be 'none' or a '+'-joined set of bias, seqaux, aux (each at most once)")
        need(float(self.route_scale) > 0, "route_scale", "must be positive")
        for name in ("bias_update_speed", "seq_aux_alpha", "aux_alpha", "mtp_lambda"):
            need(float(getattr(self, name)) >= 0, name, "must be >= 0")
        E, K = self.n_routed_experts, self.n_activated_experts
        if E == 0:
            return
        need(K <= E, "n_activated_experts", f"must be <= n_routed_experts = {E}")
        need(self.n_dense_layers <= self.n_layer, "n_dense_layers", f"must be <= n_layer = {self.n_layer}")
        groups, limited = self.n_expert_groups, self.n_limited_groups
        if groups > 1:
            need(E % groups == 0, "n_expert_groups", f"must divide n_routed_experts = {E}")
            need(limited <= groups, "n_limited_groups", f"must be <= n_expert_groups = {groups}")
            need(K <= limited * (E // groups), "n_activated_experts",
                 f"cannot be chosen from {limited} groups of {E // groups} experts")


# tinyds's TrainConfig / DataConfig defaults (tinyds/model/config.h), written into checkpoints made in Python so
# that they carry the same config JSON as tinyds's own.
TRAIN_DEFAULTS = {"batch_size": 16, "seq_len": 128, "steps": 1000, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 50,
                  "beta1": 0.9, "beta2": 0.95, "adam_eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0,
                  "eval_every": 200, "eval_problems": 200, "ckpt_every": 500, "log_every": 10, "seed": 1337}
DATA_DEFAULTS = {"levels": [1], "n_train": 20000, "pad_drills": False, "drill_columns": 0, "distractors": 0.0}

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
        "model": dict(n_layer=4, d_model=128, n_head=4, n_kv_head=4, head_dim=32, ffn_hidden=352, max_seq_len=256,
                      rope_theta=500.0, bias_update_speed=1e-4),
        "train": dict(batch_size=8, seq_len=224, steps=16000, lr=7e-4, min_lr=1e-5, warmup_steps=100,
                      weight_decay=0.0, eval_every=4000, eval_problems=200, ckpt_every=4000, log_every=400),
        "data": dict(n_train=128000, pad_drills=True, drill_columns=32),
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

# "nano_ds": the nano shape made DeepSeek-style, the third golden test's model. tinyds writes it with
#   tinyds init --preset nano --attention mla --q-lora-rank 8 --kv-lora-rank 12 --rope-dim 4 --n-kv-head 4
#     --n-routed-experts 4 --n-activated-experts 2 --n-shared-experts 1 --moe-inter-dim 16 --n-dense-layers 1
#     --mtp-depth 1 --balance bias+seqaux --seq-aux-alpha 0.01 --bias-update-speed 0.01
# Layer 0 dense, layer 1 MoE (E 4, K 2, Ns 1, Fe 16), one MTP module whose block is MoE too. seq_aux_alpha 0.01
# (100x V3's) so the balance loss visibly contributes to the router's gradients.
DS_OVERRIDES = {"nano": dict(attention="mla", n_kv_head=4, **MLA_DIMS["nano"], n_routed_experts=4,
                             n_activated_experts=2, n_shared_experts=1, moe_inter_dim=16, n_dense_layers=1,
                             mtp_depth=1, balance="bias+seqaux", seq_aux_alpha=0.01, bias_update_speed=0.01)}
# Presets made of a tinyds preset plus model overrides: name -> (tinyds preset, overrides).
DERIVED_PRESETS = {"nano_ds": ("nano", DS_OVERRIDES["nano"])}


def preset(name, **model_overrides):
    """The whole tinyds config (as the dict config_to_json writes) of a named preset, with optional model field
    overrides (e.g. attention="mla", q_lora_rank=8, kv_lora_rank=12, rope_dim=4), validated."""
    if name in DERIVED_PRESETS:
        base, overrides = DERIVED_PRESETS[name]
        full = preset(base, **{**overrides, **model_overrides})
        return {**full, "name": name}
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}' (known presets: {', '.join(list(PRESETS) + list(DERIVED_PRESETS))})")
    p = PRESETS[name]
    model = ModelConfig(**{**p["model"], **model_overrides})
    model.validate(f"preset {name}")
    train = {**TRAIN_DEFAULTS, **p["train"]}
    data = {**copy.deepcopy(DATA_DEFAULTS), **p["data"]}
    return {"name": name, "model": model_dict(model), "train": train, "data": data}


# The fields added with MoE and MTP (DESIGN 4.2-4.4), in declaration order.
MOE_MTP_FIELDS = ["n_routed_experts", "n_activated_experts", "n_shared_experts", "moe_inter_dim", "n_dense_layers",
                  "score_func", "route_scale", "n_expert_groups", "n_limited_groups", "balance", "bias_update_speed",
                  "seq_aux_alpha", "aux_alpha", "mtp_depth", "mtp_lambda"]


def model_dict(model):
    """The model fields as a dict for a checkpoint's config. A model without experts or MTP whose MoE / MTP fields
    are all at their defaults leaves them out, so that its checkpoint stays readable by a tinyds built before
    those fields existed (whose config reader rejects unknown fields); the twin fills the defaults back in."""
    d = asdict(model)
    defaults = ModelConfig()
    if all(d[f] == getattr(defaults, f) for f in MOE_MTP_FIELDS):
        for f in MOE_MTP_FIELDS:
            del d[f]
    return d


def config_json(full_config):
    """The string stored in a checkpoint's __metadata__["config"]."""
    return json.dumps(full_config)
