#!/usr/bin/python3
"""tests/reference/make_random_ckpt.py — write a randomly initialised checkpoint in tinyds's format, from Python.

    /usr/bin/python3 tests/reference/make_random_ckpt.py --preset nano --seed 7 --out nano_init.safetensors
        [--with-adam]   also write zero "adam_m.<name>" / "adam_v.<name>" tensors (the twin ignores them,
                        tinyds loads them as optimizer state)
        [--std S]       override init_std (a larger std gives larger activations and gradients)

The file holds every parameter under its tinyds name (F32) and the __metadata__ of a tinyds checkpoint
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

from config import config_json, preset
from model import TinyDS
from safetensors_io import write_safetensors


def char_vocab():
    """tinyds's default character vocabulary (tinyds/data/tokenizer.h): the special tokens at their fixed ids,
    then newline and the printable ASCII characters."""
    specials = ["<pad>", "<bos>", "<eos>", "<think>", "</think>"]
    return {"type": "char", "tokens": specials + ["\n"] + [chr(c) for c in range(32, 127)]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="nano", help="nano | small | base (tinyds presets)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--std", type=float, default=None, help="override model.init_std")
    ap.add_argument("--with-adam", action="store_true", help="add zero adam_m.* / adam_v.* tensors")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    cfg = preset(args.preset)
    if args.std is not None:
        cfg["model"]["init_std"] = args.std
    cfg["train"]["seed"] = args.seed
    model = TinyDS(cfg["model"])
    model.reset_parameters(generator=torch.Generator().manual_seed(args.seed))

    tensors = {name: p.detach().numpy().astype(np.float32) for name, p in model.tinyds_parameters()}
    if args.with_adam:
        for name, p in model.tinyds_parameters():
            tensors["adam_m." + name] = np.zeros(tuple(p.shape), np.float32)
            tensors["adam_v." + name] = np.zeros(tuple(p.shape), np.float32)
    metadata = {"format": "tinyds", "format_version": "1", "config": config_json(cfg),
                "tokenizer": json.dumps(char_vocab()), "train_state": json.dumps({"step": 0, "adam_t": 0}),
                "written_by": "tests/reference/make_random_ckpt.py"}
    write_safetensors(args.out, tensors, metadata)
    n = sum(p.numel() for p in model.parameters())
    print(f"make_random_ckpt: wrote {args.out} ({args.preset}, {n} parameters, seed {args.seed})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, KeyError, OSError) as e:  # bad config, checkpoint or path: a message, not a traceback
        sys.exit(f"make_random_ckpt.py: error: {e.args[0] if isinstance(e, KeyError) else e}")
