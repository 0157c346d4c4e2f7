#!/usr/bin/python3
"""tests/reference/bench_torch.py — training throughput of the PyTorch twin (eager mode, CPU, float32).

    /usr/bin/python3 tests/reference/bench_torch.py --config base [--steps 20 --warmup 3 --threads 2 --json]
    --config takes a preset name (nano, small, base), a JSON file (a whole tinyds config, as in a checkpoint's
    metadata, or just its "model" object) or a tinyds checkpoint (.safetensors, its __metadata__["config"]).
    Explicit flags override single fields: --d-model 128 --n-layer 2 --batch 8 --seq 64 ...

Times full training steps on one fixed random batch: zero grads, forward, masked cross-entropy, backward, global
grad-norm clip, torch.optim.AdamW step (decay on matrices only). Reports the median step time and tokens/s; with
--json one line:
    {"tokens_per_s", "median_step_s", "threads", "torch", "blas", "openblas", "gemm512_gflops", "params",
     "train_gflops_per_s", "batch", "seq", "config", "steps", "omp_wait_policy", "openblas_thread_timeout",
     "load_avg_1min"}   (the machine's load when the run ended: on shared cores a high load means a slow step)
gemm512_gflops is torch's float32 512x512x512 matmul rate, the machine's BLAS peak to compare against;
train_gflops_per_s counts 6 * (matmul parameters) + 6 * n_layer * T * H * D FLOPs per token (Kaplan et al. 2020).
Debian's python3-torch calls whatever libblas.so.3 is installed: the reference BLAS unless libopenblas0-pthread
is (then GEMM is ~30x faster), so the BLAS actually loaded is reported and a warning printed without OpenBLAS.

    /usr/bin/python3 tests/reference/bench_torch.py --rollout SPEC.json [--threads 2 --json]
times batched rollouts instead (decode.py: kv-cache decoding, multinomial sampling, inference only) of the tinyds
checkpoint SPEC names, as `tinyds bench --rollout` writes it: {"ckpt", "prompts" [[ids]], "max_new_tokens",
"n_tokens", "temperature", "warmup", "repeats", "seed", "check_prompts" [[ids]], "check_new_tokens",
"tinyds_greedy" [[ids]], "tinyds_greedy_logprobs" [[lp]]}. Every sequence gets max_new_tokens (no stop at <eos>;
fewer only where max_seq_len cuts it). First the checks: the cached greedy completions of check_prompts must equal
the full-recompute greedy ones (decode.greedy_full), and tinyds_greedy when given, token for token and in their
log-probs (within 1e-5); a failed check exits 1 (with --json 0: the JSON line says it, and the caller decides).
The JSON line: {"tokens_per_s" (sampled tokens / median wall time), "tokens_per_cpu_s", "median_s", "times_s",
"cpu_s" (process CPU time, all threads), "tokens", "steps", "greedy_cache_equals_recompute",
"greedy_equals_tinyds", "logprob_max_diff_recompute", "logprob_max_diff_tinyds", "first_difference", "threads",
"torch", "blas", "omp_wait_policy", "load_avg_1min"}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODEL_FLAGS = {"vocab_size": int, "max_seq_len": int, "n_layer": int, "d_model": int, "attention": str,
               "n_head": int, "n_kv_head": int, "head_dim": int, "q_lora_rank": int, "kv_lora_rank": int,
               "rope_dim": int, "ffn_hidden": int, "rope_theta": float, "norm_eps": float,
               # MoE and MTP (DESIGN 4.2-4.4)
               "n_routed_experts": int, "n_activated_experts": int, "n_shared_experts": int, "moe_inter_dim": int,
               "n_dense_layers": int, "score_func": str, "route_scale": float, "n_expert_groups": int,
               "n_limited_groups": int, "balance": str, "bias_update_speed": float, "seq_aux_alpha": float,
               "aux_alpha": float, "mtp_depth": int, "mtp_lambda": float}


def parse_args(argv):
    ap = argparse.ArgumentParser(description="PyTorch twin training throughput")
    ap.add_argument("--config", default="base", help="preset name, config JSON file, or tinyds checkpoint")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=None, help="B (default: the config's train.batch_size, else 16)")
    ap.add_argument("--seq", type=int, default=None, help="T (default: the config's train.seq_len, else 128)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--rollout", default=None, metavar="SPEC.json", help="time rollouts instead (see the header)")
    for field, kind in MODEL_FLAGS.items():
        ap.add_argument("--" + field.replace("_", "-"), type=kind, default=None, help=f"override model.{field}")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("need --steps >= 1, --warmup >= 0, --threads >= 1")
    return args


def load_config(spec):
    """The whole tinyds config dict ({"model": ..., "train": ...}) named by --config."""
    from config import preset
    from safetensors_io import read_safetensors
    if not os.path.exists(spec):
        return preset(spec)
    if spec.endswith(".safetensors"):
        _, metadata = read_safetensors(spec)
        if "config" not in metadata:
            raise SystemExit(f"bench_torch.py: {spec} has no __metadata__['config']")
        return json.loads(metadata["config"])
    with open(spec) as f:
        cfg = json.load(f)
    return cfg if "model" in cfg else {"name": os.path.basename(spec), "model": cfg}


def blas_report(torch):
    """(description, is_openblas): the BLAS library torch has actually loaded (after a matmul), from
    /proc/self/maps, plus what torch.__config__.show() says and whether libopenblas0-pthread is installed."""
    torch.ones(8, 8) @ torch.ones(8, 8)
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in os.path.basename(path).lower() or "openblas" in path:
                    libs.add(path)
    except OSError:
        pass
    info = next((part.split("=")[1] for part in torch.__config__.show().replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "?")
    try:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "libopenblas0-pthread"],
                                capture_output=True, text=True).stdout
    except OSError:
        status = ""
    installed = "install ok installed" in status
    is_openblas = any("openblas" in p for p in libs)
    desc = (f"{'openblas' if is_openblas else 'NOT openblas'}: loaded {', '.join(sorted(libs)) or 'no libblas'}; "
            f"torch BLAS_INFO={info}; libopenblas0-pthread {'installed' if installed else 'NOT installed'}")
    return desc, is_openblas


def gemm_gflops(torch, n=512, reps=10, rounds=7):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        times.append((time.perf_counter() - start) / reps)
    return 2.0 * n ** 3 / statistics.median(times) / 1e9


def main(argv=None):
    args = parse_args(argv)
    # OpenBLAS reads its thread count when it is loaded (with torch): set it first so --threads is honest.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    # torch runs elementwise ops on its OpenMP pool and GEMMs on OpenBLAS's own pthread pool. By default both
    # pools busy-wait after their work, so each steals the cores the other needs: on 2 shared cores the base
    # step measured 13 s instead of 1 s. Idle threads should sleep (override by setting these yourself).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")   # 2^4 cycles of spinning (the minimum) before sleeping
    import torch
    from config import ModelConfig
    from model import TinyDS
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.rollout:
        return bench_rollout(torch, args)

    full = load_config(args.config)
    model_dict = dict(full["model"])
    for field in MODEL_FLAGS:
        if getattr(args, field) is not None:
            model_dict[field] = getattr(args, field)
    cfg = ModelConfig.from_dict(model_dict, where=f"--config {args.config}")
    train = full.get("train", {})
    B = args.batch or train.get("batch_size", 16)
    T = args.seq or train.get("seq_len", 128)
    if T > cfg.max_seq_len:
        raise SystemExit(f"bench_torch.py: --seq {T} exceeds max_seq_len {cfg.max_seq_len}")

    blas, is_openblas = blas_report(torch)
    if not is_openblas:
        print(f"bench_torch.py: warning: torch is not using OpenBLAS ({blas}); GEMM will be ~30x slower. "
              f"Run make deps (installs libopenblas0-pthread).", file=sys.stderr)
    gemm = gemm_gflops(torch)

    model = TinyDS(cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]     # matrices and the stacked (E, ., .) experts
    no_decay = [p for p in model.parameters() if p.dim() < 2]   # norm gains
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    tokens = torch.randint(0, cfg.vocab_size, (B, T))                 # (B, T)
    targets = torch.randint(0, cfg.vocab_size, (B, T))                # (B, T)

    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        result = model.forward_parts(tokens, targets)   # the whole objective: main + MTP + balance losses
        result.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.update_moe_bias(result.routings)        # the aux-loss-free bias update, as tinyds's trainer does
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)

    n_params = sum(p.numel() for p in model.parameters())
    matmul_params = n_params - model.embed.numel() - sum(p.numel() for p in no_decay)  # lookups and gains: no GEMM
    # Dense models only: tinyds's bench counts FLOPs on ACTIVE parameters (train/bench.h) and reports both
    # throughputs with that one count; this figure is the twin's own estimate for a dense model.
    flops_per_token = 6 * matmul_params + 6 * cfg.n_layer * T * cfg.n_head * cfg.head_dim
    result = {"tokens_per_s": B * T / median, "median_step_s": median, "threads": args.threads,
              "torch": torch.__version__, "blas": blas, "openblas": is_openblas, "gemm512_gflops": gemm,
              "params": n_params, "train_gflops_per_s": flops_per_token * B * T / median / 1e9,
              "batch": B, "seq": T, "config": full.get("name", args.config), "steps": args.steps,
              "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
              "openblas_thread_timeout": os.environ["OPENBLAS_THREAD_TIMEOUT"], "load_avg_1min": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"bench_torch: {result['config']} ({n_params / 1e6:.2f}M params) B {B} T {T}, {args.threads} threads: "
              f"median step {median * 1e3:.1f} ms, {result['tokens_per_s']:.0f} tokens/s, "
              f"{result['train_gflops_per_s']:.1f} GFLOP/s (512 GEMM {gemm:.1f} GFLOP/s); torch {torch.__version__}, "
              f"{blas}; load average {result['load_avg_1min']:.1f}")
    return 0


def first_difference(a, b):
    """(completion index, token index) of the first place two lists of completions differ, or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        for t, (u, v) in enumerate(zip(x, y)):
            if u != v:
                return [i, t]
        if len(x) != len(y):
            return [i, min(len(x), len(y))]
    return None if len(a) == len(b) else [min(len(a), len(b)), 0]


def bench_rollout(torch, args):
    """--rollout SPEC.json: the greedy checks, then the timed rollouts (see the header)."""
    import decode
    from model import load_state
    with open(args.rollout) as f:
        spec = json.load(f)
    model, _ = load_state(spec["ckpt"])
    model.eval()
    blas, is_openblas = blas_report(torch)
    if not is_openblas:
        print(f"bench_torch.py: warning: torch is not using OpenBLAS ({blas}); GEMM will be ~30x slower. "
              f"Run make deps (installs libopenblas0-pthread).", file=sys.stderr)
    n_tokens, new = spec["n_tokens"], spec["max_new_tokens"]

    check_prompts, check_new = spec["check_prompts"], spec["check_new_tokens"]
    cached, cached_lp, _ = decode.rollout(model, check_prompts, check_new, n_tokens, temperature=0)
    full, full_lp = decode.greedy_full(model, check_prompts, check_new, n_tokens)
    theirs, theirs_lp = spec.get("tinyds_greedy"), spec.get("tinyds_greedy_logprobs")
    # The tokens alone are a weak check on a freshly initialised model (std 0.02): attention barely moves its
    # logits, so a decode with wrong RoPE positions still picked the same argmax on nano. The log-probs of the
    # chosen tokens move: that error changed them by 5.8e-5 (nano, MLA) and 2.9e-4 (nano-dense). Tolerance 1e-5:
    # the three fp32 implementations (cached, recomputed, tinyds) agreed within 4.8e-7 on both (lp ~ -5, whose
    # float32 spacing is 4.8e-7).
    tol = 1e-5

    def max_diff(a, b):
        return max((abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v)), default=0.0)
    lp_recompute = max_diff(cached_lp, full_lp)
    lp_tinyds = None if theirs_lp is None else max_diff(cached_lp, theirs_lp)
    result = {"greedy_cache_equals_recompute": cached == full and lp_recompute <= tol,
              "greedy_equals_tinyds": None if theirs is None else cached == theirs and (lp_tinyds or 0.0) <= tol,
              "logprob_max_diff_recompute": lp_recompute, "logprob_max_diff_tinyds": lp_tinyds,
              "logprob_tolerance": tol,
              "first_difference": first_difference(cached, full if cached != full else (theirs or cached))}

    prompts = spec["prompts"]
    gen = torch.Generator().manual_seed(spec.get("seed", 0))
    times, cpu, steps, tokens = [], [], 0, 0
    warmup = spec.get("warmup", 1)                   # untimed rollouts first (allocator, thread pools)
    for rep in range(warmup + spec["repeats"]):
        start, start_cpu = time.perf_counter(), time.process_time()
        out, _, steps = decode.rollout(model, prompts, new, n_tokens, spec.get("temperature", 1.0), generator=gen)
        if rep >= warmup:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        tokens = sum(len(c) for c in out)            # B * max_new_tokens unless max_seq_len cut a sequence short
    median = statistics.median(times)
    result.update({"tokens_per_s": tokens / median, "median_s": median, "times_s": times, "cpu_s": cpu,
                   "tokens": tokens, "tokens_per_cpu_s": tokens / statistics.median(cpu),
                   "steps": steps, "batch": len(prompts), "max_new_tokens": new, "threads": args.threads,
                   "torch": torch.__version__, "blas": blas, "openblas": is_openblas,
                   "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "load_avg_1min": os.getloadavg()[0]})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"bench_torch --rollout: B {len(prompts)} x {new} new tokens, {steps} steps, {args.threads} threads: "
              f"median {median * 1e3:.1f} ms, {result['tokens_per_s']:.0f} tokens/s; greedy cache == recompute: "
              f"{result['greedy_cache_equals_recompute']}, == tinyds: {result['greedy_equals_tinyds']}; "
              f"load average {result['load_avg_1min']:.1f}")
    ok = result["greedy_cache_equals_recompute"] and result["greedy_equals_tinyds"] is not False
    if not ok:
        print(f"bench_torch.py: error: greedy decoding disagrees at (completion, token) {result['first_difference']}",
              file=sys.stderr)
    # With --json the caller (tinyds bench --rollout) reads the checks from the JSON line and decides.
    return 0 if ok or args.json else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, KeyError, OSError) as e:  # bad config, checkpoint or path: a message, not a traceback
        sys.exit(f"bench_torch.py: error: {e.args[0] if isinstance(e, KeyError) else e}")
