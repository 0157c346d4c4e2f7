#!/bin/bash
# tests/reference/rollout_parity.sh — tinyds's rollout (model/rollout.h) and the PyTorch twin's kv-cache decode
# (tests/reference/decode.py) decode greedily to the same tokens, and the twin's cached decode equals its own
# full recompute: what `tinyds bench --rollout` checks before it times anything.
#
#   tests/reference/rollout_parity.sh path/to/tinyds DIR
# For the DeepSeek-style nano (MLA, MoE, MTP) and nano-dense (GQA), each written by `tinyds init --seed 7
# --max-seq-len 128` (the benchmark's level-2 prompts are 70-100 tokens, longer than nano's 64):
#   tinyds bench --rollout --ckpt CKPT --prompts 2 --group 2 --max-new-tokens 12 --rollouts 1 --json OUT
# then OUT must say that the twin ran and that both greedy checks hold. CTest runs it as "rollout_reference_parity".
set -euo pipefail
die() { echo "rollout_parity.sh: error: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 path/to/tinyds DIR"
tinyds="$1" dir="$2"
mkdir -p "$dir"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"
for preset in nano nano-dense; do
  ckpt="$dir/rollout_${preset}.safetensors" out="$dir/rollout_${preset}.json"
  rm -f "$ckpt" "$out"
  "$tinyds" init --preset "$preset" --max-seq-len 128 --seed 7 --out "$ckpt" >/dev/null || die "tinyds init --preset $preset failed"
  "$tinyds" bench --rollout --ckpt "$ckpt" --prompts 2 --group 2 --max-new-tokens 12 --rollouts 1 --json "$out" \
    || die "tinyds bench --rollout on $ckpt failed (exit status 1: greedy decoding disagrees, see above)"
  /usr/bin/python3 - "$out" <<'PY' || die "$preset: see above"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["torch"]
if "result" not in t:
    sys.exit(f"the PyTorch twin did not run: {t.get('skipped')}")
res = t["result"]
if res["greedy_cache_equals_recompute"] is not True or res["greedy_equals_tinyds"] is not True:
    sys.exit(f"greedy decoding disagrees: {res}")
print(f"rollout_parity.sh: {r['preset']}: greedy tokens equal (twin cache == twin recompute == tinyds)")
PY
done
