#!/usr/bin/python3
"""tests/reference/golden.py — the PyTorch twin's golden state for a tinyds checkpoint.

    /usr/bin/python3 tests/reference/golden.py --ckpt INIT.safetensors --out GOLDEN.safetensors
        [--batch 2 --seq 16 --seed 0]

Loads the checkpoint into the twin (model.py), builds one fixed batch, and writes (safetensors, all F32 unless said):
    inputs (B, T) I32, targets (B, T) I32 (-1 = masked), logits (B, T, V), loss [1] (the TOTAL objective),
    grad.<param> for every parameter (gradient of the total objective at the checkpoint weights),
    adamw_losses [10]       total objective before each of 10 AdamW steps on that same batch (adamw_losses[0] == loss),
    adamw_grad_norms [10]   global gradient L2 norm of each step, before clipping,
    final.<param>           the parameters after the 10 steps.
A model with MoE layers or MTP modules (e.g. nano_ds) also gets:
    main_loss [1], mtp_loss [1], balance_loss [1], total [1]   the parts of the objective (total == loss)
    final.<prefix>ffn.gate.bias (E)   every MoE layer's bias after the 10 steps' bias updates
    metadata min_topk_gap, min_topk_gap_steps: the smallest margin of any top-K (and group) choice in the golden
        forward / in all 10 training forwards (moe.min_topk_gap); the C++ test asserts they are far above float32
        rounding, so that both sides route every token the same way.
Each step s = 1..10: zero grads; forward (loss_s recorded); backward; clip the global gradient norm to grad_clip
(torch.nn.utils.clip_grad_norm_); AdamW written out by hand (adamw_by_hand below): weight decay on every tensor
of 2 or more dims (matrices and the (E, ., .) expert stacks), not on 1-D norm gains; then, when the config's
balance has "bias", the MoE bias update from that step's forward (TinyDS.update_moe_bias).
As a self-check, every step's hand update is compared with torch.optim.AdamW given the same weights and gradients.
The hyper-parameters, batch, seq, seed and the checkpoint's config are stored in __metadata__.
Everything runs in float32 on 2 threads.
"""
import argparse
import json
import os
import sys
import time

# Idle OpenMP / OpenBLAS threads sleep instead of spinning (set before numpy or torch loads them): under a parallel
# ctest on 2 cores, spinning pools starve each other (see bench_torch.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402  (after the environment above)
import torch  # noqa: E402

from model import load_state  # noqa: E402
from moe import min_topk_gap  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

# AdamW hyper-parameters of the golden run, written as strings into the metadata (tinyds parses the same text).
HYPER = {"lr": "0.01", "beta1": "0.9", "beta2": "0.95", "eps": "1e-8", "weight_decay": "0.1", "grad_clip": "1.0"}
ADAMW_STEPS = 10
MASK_FRACTION = 0.25


def make_batch(V, B, T, seed):
    """inputs (B, T) and targets (B, T), int64. Tokens uniform in [0, V); about 25% of the targets set to -1,
    with at least one masked and one unmasked target in every row."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, V, (B, T), generator=g)                 # (B, T)
    targets = torch.randint(0, V, (B, T), generator=g)                # (B, T)
    masked = torch.rand(B, T, generator=g) < MASK_FRACTION            # (B, T) bool
    for b in range(B):
        first, second = torch.randperm(T, generator=g)[:2].tolist()
        masked[b, first] = True    # every row exercises the mask ...
        masked[b, second] = False  # ... and still has a position that counts
    targets[masked] = -1
    return inputs, targets


def global_grad_norm(model):
    return torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters())).item()


@torch.no_grad()
def adamw_by_hand(model, moments, t, hp):
    """One AdamW step (Loshchilov & Hutter 2019, decoupled weight decay) on every parameter; t >= 1.
    moments: {name: [m, v]} (updated in place). Weight decay applies only to matrices (>= 2-D: the 3-D expert
    stacks are E matrices), not to norm gains (1-D). For the dense and MLA models this is "2-D only"."""
    lr, b1, b2, eps = hp["lr"], hp["beta1"], hp["beta2"], hp["eps"]
    for name, p in model.named_parameters():
        g = p.grad
        m, v = moments[name]
        m = b1 * m + (1 - b1) * g                      # first moment
        v = b2 * v + (1 - b2) * g * g                  # second moment
        moments[name] = [m, v]
        m_hat = m / (1 - b1 ** t)                      # bias corrections: moments start at 0
        v_hat = v / (1 - b2 ** t)
        wd = hp["weight_decay"] if p.dim() >= 2 else 0.0
        p -= lr * (m_hat / (v_hat.sqrt() + eps) + wd * p)   # decay uses the pre-step p (decoupled)


def torch_adamw(model, hp):
    """torch.optim.AdamW with the same hyper-parameters and the same decay rule (tensors of >= 2 dims)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])


def check_close(what, got, want, tol):
    """Raises if max |got - want| > tol * max(1, max |want|)."""
    err = (got - want).abs().max().item()
    scale = max(1.0, want.abs().max().item())
    if not err <= tol * scale:
        raise AssertionError(f"self-check failed: {what}: hand AdamW vs torch.optim.AdamW differ by {err:.3e} "
                             f"(allowed {tol * scale:.3e})")
    return err


def routing_gap(model, routings):
    """The smallest top-K / group margin over the MoE layers' routings (inf without MoE)."""
    cfg = model.cfg
    return min((min_topk_gap(r, cfg.n_activated_experts, cfg.n_expert_groups, cfg.n_limited_groups)
                for r in routings), default=float("inf"))


def train_steps(ckpt, inputs, targets, hp):
    """ADAMW_STEPS steps of the hand AdamW (each cross-checked against torch.optim.AdamW), each followed by the MoE
    bias update. Returns (losses, grad_norms, trained model, largest self-check difference, smallest routing
    margin over the steps' forwards)."""
    model, _ = load_state(ckpt)
    twin, _ = load_state(ckpt)        # torch.optim.AdamW's copy; re-synced to `model` before every step
    opt = torch_adamw(twin, hp)
    moments = {n: [torch.zeros_like(p), torch.zeros_like(p)] for n, p in model.named_parameters()}
    losses, norms, worst, gap = [], [], 0.0, float("inf")
    for t in range(1, ADAMW_STEPS + 1):
        model.zero_grad(set_to_none=True)
        result = model.forward_parts(inputs, targets)
        loss = result.total
        losses.append(loss.item())
        gap = min(gap, routing_gap(model, result.routings))
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"]).item())
        # Self-check: same starting weights and same clipped gradients into torch.optim.AdamW. Its moments
        # have seen the same gradients every step, so they must equal ours too.
        with torch.no_grad():
            for p_twin, p in zip(twin.parameters(), model.parameters()):
                p_twin.copy_(p)
                p_twin.grad = p.grad.clone()
        opt.step()
        adamw_by_hand(model, moments, t, hp)
        for (name, p), p_twin in zip(model.named_parameters(), twin.parameters()):
            # 1e-6: both are float32 evaluations of the same formula in a different order (a few ulp of the
            # ~0.01-sized update, far below 1e-6); a wrong bias correction or decay rule is >= 1e-4 off.
            worst = max(worst, check_close(f"step {t} {name}", p.detach(), p_twin.detach(), 1e-6))
            state = opt.state[p_twin]
            check_close(f"step {t} {name} first moment", moments[name][0], state["exp_avg"], 1e-6)
            check_close(f"step {t} {name} second moment", moments[name][1], state["exp_avg_sq"], 1e-6)
        # Auxiliary-loss-free balancing: after the optimizer step, with the loads of this step's forward.
        model.update_moe_bias(result.routings)
    return losses, norms, model, worst, gap


def main(argv=None):
    ap = argparse.ArgumentParser(description="write the PyTorch golden state for a tinyds checkpoint")
    ap.add_argument("--ckpt", required=True, help="tinyds checkpoint (safetensors) to start from")
    ap.add_argument("--out", required=True, help="golden safetensors file to write")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    start = time.time()
    torch.set_num_threads(2)
    torch.set_default_dtype(torch.float32)
    hp = {k: float(v) for k, v in HYPER.items()}

    model, full_config = load_state(args.ckpt)
    cfg = model.cfg
    if args.seq < 2 or args.seq > cfg.max_seq_len or args.batch < 1:
        sys.exit(f"golden.py: need --batch >= 1 and 2 <= --seq <= max_seq_len = {cfg.max_seq_len}")
    inputs, targets = make_batch(cfg.vocab_size, args.batch, args.seq, args.seed)

    result = model.forward_parts(inputs, targets)
    logits, loss = result.logits, result.total                         # (B, T, V), scalar
    loss.backward()                                                    # d(total) / d(every parameter)
    grad_norm = global_grad_norm(model)
    moe_or_mtp = bool(model.tinyds_buffers()) or cfg.mtp_depth > 0

    losses, norms, trained, worst, steps_gap = train_steps(args.ckpt, inputs, targets, hp)
    # Step 1 starts from the same weights and batch as the golden forward: same loss, to float32 rounding.
    if abs(losses[0] - loss.item()) > 1e-6 * max(1.0, abs(loss.item())):
        raise AssertionError(f"adamw_losses[0] = {losses[0]} differs from loss = {loss.item()}")

    out = {"inputs": inputs.numpy().astype(np.int32), "targets": targets.numpy().astype(np.int32),
           "logits": logits.detach().numpy(), "loss": np.array([loss.item()], np.float32)}
    for name, p in model.tinyds_parameters():
        out["grad." + name] = p.grad.numpy()
    out["adamw_losses"] = np.array(losses, np.float32)
    out["adamw_grad_norms"] = np.array(norms, np.float32)
    for name, p in trained.tinyds_parameters() + trained.tinyds_buffers():
        out["final." + name] = p.detach().numpy()
    meta = dict(HYPER, batch=str(args.batch), seq=str(args.seq), seed=str(args.seed), steps=str(ADAMW_STEPS),
                config=json.dumps(full_config), checkpoint=args.ckpt, grad_norm=repr(grad_norm),
                torch=torch.__version__, written_by="tests/reference/golden.py")
    parts = ""
    if moe_or_mtp:
        for key in ("main_loss", "mtp_loss", "balance_loss", "total"):
            out[key] = np.array([getattr(result, key).item()], np.float32)
        gap = routing_gap(model, result.routings)
        meta.update(min_topk_gap=repr(gap), min_topk_gap_steps=repr(steps_gap))
        parts = (f" (main {result.main_loss.item():.6f} mtp {result.mtp_loss.item():.6f} balance "
                 f"{result.balance_loss.item():.6f}; min top-K gap {gap:.2e}, over the steps {steps_gap:.2e})")
    write_safetensors(args.out, out, meta)

    print(f"golden: loss {loss.item():.6f}{parts} grad_norm {grad_norm:.6f} | adamw loss {losses[0]:.4f} -> "
          f"{losses[-1]:.4f} in {ADAMW_STEPS} steps | self-check vs torch.optim.AdamW ok (max diff {worst:.1e}) "
          f"| wrote {args.out} in {time.time() - start:.2f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, KeyError, OSError) as e:  # bad config, checkpoint or path: a message, not a traceback
        sys.exit(f"golden.py: error: {e.args[0] if isinstance(e, KeyError) else e}")
