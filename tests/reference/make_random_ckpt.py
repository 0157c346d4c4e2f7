#!/usr/bin/python3
"""tests/reference/make_random_ckpt.py — write a randomly initialised checkpoint in tinyds's format, from Python.

    /usr/bin/python3 tests/reference/make_random_ckpt.py --preset nano --seed 7 --out nano_init.safetensors
        [--with-adam]   also write zero "adam_m.<name>" / "adam_v.<name>" tensors (the twin ignores them,
                        tinyds loads them as optimizer state)
        [--std S]       override init_std (a larger std gives larger activations and gradients)
        [--attention mla [--q-lora-rank Q --kv-lora-rank L --rope-dim R]]
                        switch the preset's attention (mha | gqa | mqa | mla); for mla the ranks default to the
                        golden test's for nano (Q 8, L 12, R 4) and must be given for other presets
        [--ds]          the DeepSeek-style shape of the MoE+MTP golden test (config.DS_OVERRIDES; for nano:
                        MLA as above, layer 0 dense, layer 1 MoE with E 4, K 2, Ns 1, Fe 16, one MTP module,
                        balance bias+seqaux, seq_aux_alpha 0.01, bias_update_speed 0.01): "nano_ds"
        [--n-routed-experts E --n-activated-experts K --n-shared-experts Ns --moe-inter-dim Fe
         --n-dense-layers N --score-func sigmoid|softmax --route-scale X --n-expert-groups G --n-limited-groups M
         --balance none|bias+seqaux+aux --bias-update-speed X --seq-aux-alpha X --aux-alpha X
         --mtp-depth D --mtp-lambda X]
                        single MoE / MTP fields (the names of `tinyds init`), applied after --ds

The file holds every parameter under its tinyds name (F32), every MoE layer's "<prefix>ffn.gate.bias" buffer
(zeros, as tinyds's init), and the __metadata__ of a tinyds checkpoint
(tinyds/train/checkpoint.h: format, format_version, config, tokenizer, train_state), as `tinyds init` writes it,
so the golden pipeline can be exercised without the C++ tool, and tinyds's checkpoint reader can be tested on a
file it did not write itself. The weights are NOT tinyds's init (a different random generator): only the
format is the same.
"""
import argparse
import json
import sys

import numpy as np
import torch

from config import DS_OVERRIDES, MLA_DIMS, MOE_MTP_FIELDS, ModelConfig, config_json, preset
from model import TinyDS
from safetensors_io import write_safetensors


def char_vocab():
    """tinyds's default character vocabulary (tinyds/data/tokenizer.h): the special tokens at their fixed ids,
    then newline and the printable ASCII characters."""
    specials = ["<pad>", "<bos>", "<eos>", "<think>", "</think>"]
    return {"type": "char", "tokens": specials + ["\n"] + [chr(c) for c in range(32, 127)]}


def model_overrides(args, ap):
    """The model fields that --attention and the MLA rank flags change (validated later by preset())."""
    ranks = {"q_lora_rank": args.q_lora_rank, "kv_lora_rank": args.kv_lora_rank, "rope_dim": args.rope_dim}
    given = {k: v for k, v in ranks.items() if v is not None}
    if args.attention is None:
        if given:
            ap.error("--q-lora-rank / --kv-lora-rank / --rope-dim need --attention mla")
        return {}
    if args.attention != "mla":
        if given:
            ap.error(f"--q-lora-rank / --kv-lora-rank / --rope-dim are MLA dims; --attention is {args.attention}")
        # A dense kind on another preset shape: the kv-head count must fit it (mha: H, mqa: 1; gqa: keep).
        n_head = preset(args.preset)["model"]["n_head"]
        kv = {"mha": n_head, "mqa": 1}.get(args.attention)
        return {"attention": args.attention, **({"n_kv_head": kv} if kv else {})}
    missing = [k for k in ranks if k not in given and k not in MLA_DIMS.get(args.preset, {})]
    if missing:
        flags = " ".join("--" + m.replace("_", "-") for m in missing)
        ap.error(f"--attention mla on preset {args.preset}: give {flags} (no default MLA dims for this preset)")
    # MLA ignores n_kv_head (every head has its own k_C and v, from the one latent); write n_head, the MHA value.
    n_head = preset(args.preset)["model"]["n_head"]
    return {"attention": "mla", "n_kv_head": n_head, **MLA_DIMS.get(args.preset, {}), **given}


def moe_mtp_overrides(args, ap):
    """The model fields that --ds and the single MoE / MTP flags set (validated later by preset())."""
    out = {}
    if args.ds:
        if args.preset not in DS_OVERRIDES:
            ap.error(f"--ds: no DeepSeek-style shape for preset {args.preset} (known: {', '.join(DS_OVERRIDES)})")
        out.update(DS_OVERRIDES[args.preset])
        if args.attention not in (None, "mla"):   # --ds with a dense attention kind: keep the MoE + MTP part only
            for name in ("attention", "n_kv_head", *MLA_DIMS.get(args.preset, {})):
                out.pop(name, None)
    out.update({f: getattr(args, f) for f in MOE_MTP_FIELDS if getattr(args, f) is not None})
    return out


def add_moe_mtp_flags(ap):
    """--n-routed-experts ... --mtp-lambda: one flag per MoE / MTP model field, typed like the field."""
    defaults = ModelConfig()
    for f in MOE_MTP_FIELDS:
        ap.add_argument("--" + f.replace("_", "-"), type=type(getattr(defaults, f)), default=None,
                        help=f"model.{f} (default {getattr(defaults, f)!r})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="nano", help="nano | small | base (tinyds presets)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--std", type=float, default=None, help="override model.init_std")
    ap.add_argument("--with-adam", action="store_true", help="add zero adam_m.* / adam_v.* tensors")
    ap.add_argument("--attention", default=None, help="mha | gqa | mqa | mla (default: the preset's)")
    ap.add_argument("--q-lora-rank", type=int, default=None, help="MLA query latent rank Q")
    ap.add_argument("--kv-lora-rank", type=int, default=None, help="MLA key/value latent rank L")
    ap.add_argument("--rope-dim", type=int, default=None, help="MLA rope dim R (even)")
    ap.add_argument("--ds", action="store_true", help="the DeepSeek-style MoE + MTP shape (nano_ds for nano)")
    add_moe_mtp_flags(ap)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    cfg = preset(args.preset, **{**moe_mtp_overrides(args, ap), **model_overrides(args, ap)})
    if args.std is not None:
        cfg["model"]["init_std"] = args.std
    cfg["train"]["seed"] = args.seed
    model = TinyDS(cfg["model"])
    model.reset_parameters(generator=torch.Generator().manual_seed(args.seed))

    tensors = {name: p.detach().numpy().astype(np.float32) for name, p in model.tinyds_parameters()}
    tensors.update({name: b.numpy().astype(np.float32) for name, b in model.tinyds_buffers()})   # zeros
    if args.with_adam:
        for name, p in model.tinyds_parameters():
            tensors["adam_m." + name] = np.zeros(tuple(p.shape), np.float32)
            tensors["adam_v." + name] = np.zeros(tuple(p.shape), np.float32)
    metadata = {"format": "tinyds", "format_version": "1", "config": config_json(cfg),
                "tokenizer": json.dumps(char_vocab()), "train_state": json.dumps({"step": 0, "adam_t": 0}),
                "written_by": "tests/reference/make_random_ckpt.py"}
    write_safetensors(args.out, tensors, metadata)
    n = sum(p.numel() for p in model.parameters())
    moe = (f", {cfg['model']['n_routed_experts']} routed experts, MTP depth {cfg['model']['mtp_depth']}"
           if args.ds or any(getattr(args, f) is not None for f in MOE_MTP_FIELDS) else "")
    print(f"make_random_ckpt: wrote {args.out} ({args.preset}, attention {cfg['model']['attention']}{moe}, "
          f"{n} parameters, seed {args.seed})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, KeyError, OSError) as e:  # bad config, checkpoint or path: a message, not a traceback
        sys.exit(f"make_random_ckpt.py: error: {e.args[0] if isinstance(e, KeyError) else e}")
