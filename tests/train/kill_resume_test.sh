#!/usr/bin/env bash
# tests/train/kill_resume_test.sh — a nano training run killed with SIGKILL at several points and resumed each
# time ends with the same weights, bit for bit, as an uninterrupted run; every checkpoint left behind loads; and
# metrics.jsonl is valid JSON lines with each training step exactly once, with the uninterrupted run's losses.
# Usage: kill_resume_test.sh /path/to/tinyds
set -u
exe="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# One thread: the summation order, and so every bit of the result, is the same in every process.
export OMP_NUM_THREADS=1
run=(sft --preset nano --seq-len 64 --steps 100 --ckpt-every 7 --eval-problems 0 --replicas 1 --quiet)

"$exe" "${run[@]}" --out "$dir/a" || { echo "FAIL: the uninterrupted run failed"; exit 1; }

# Kill points: as soon as metrics.jsonl holds this many lines (checkpoints every 7 steps, so most kills fall
# between two checkpoints and the resumed run must cut the log back).
fail=0
kills=0
mkdir -p "$dir/b"
for at in 5 19 33 52 71 90; do
  if [ -e "$dir/b/final.safetensors" ]; then break; fi
  if [ -e "$dir/b/latest.safetensors" ]; then args=(sft --resume "$dir/b/latest.safetensors" --quiet)
  else args=("${run[@]}"); fi
  "$exe" "${args[@]}" --out "$dir/b" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    lines=$(cat "$dir/b/metrics.jsonl" 2>/dev/null | wc -l)
    if [ "$lines" -ge "$at" ]; then kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1)); break; fi
    sleep 0.01
  done
  wait "$pid" 2>/dev/null
  # Whatever the kill interrupted, the checkpoint on disk loads.
  if [ -e "$dir/b/latest.safetensors" ] && ! "$exe" eval --ckpt "$dir/b/latest.safetensors" --n 1 --max-new-tokens 1 >/dev/null 2>&1; then
    echo "FAIL: latest.safetensors after kill $kills does not load"; fail=1
  fi
done
if [ ! -e "$dir/b/final.safetensors" ]; then
  if [ -e "$dir/b/latest.safetensors" ]; then "$exe" sft --resume "$dir/b/latest.safetensors" --quiet --out "$dir/b"
  else "$exe" "${run[@]}" --out "$dir/b"; fi || { echo "FAIL: the last resume failed"; exit 1; }
fi
echo "kill_resume_test.sh: killed $kills times"
[ "$kills" -ge 3 ] || { echo "FAIL: only $kills kills landed (the runs finished first): nothing was tested"; fail=1; }

cmp -s "$dir/a/final.safetensors" "$dir/b/final.safetensors" || { echo "FAIL: final weights differ"; fail=1; }
/usr/bin/python3 - "$dir/a/metrics.jsonl" "$dir/b/metrics.jsonl" <<'PY' || fail=1
import json, sys
def losses(path):
    out = {}
    for n, line in enumerate(open(path), 1):
        try:
            r = json.loads(line)
        except ValueError:
            sys.exit(f"FAIL: {path}:{n} is not a JSON line: {line!r}")
        if "loss" in r:
            if r["step"] in out:
                sys.exit(f"FAIL: {path}:{n}: step {r['step']} appears twice")
            out[r["step"]] = r["loss"]
    return out
a, b = losses(sys.argv[1]), losses(sys.argv[2])
if sorted(b) != list(range(1, 101)):
    sys.exit(f"FAIL: the resumed run's steps are not 1..100 once each: {sorted(b)}")
if a != b:
    sys.exit("FAIL: losses differ: " + str([(s, a[s], b.get(s)) for s in a if a[s] != b.get(s)][:5]))
PY
[ "$fail" -eq 0 ] && echo "kill_resume_test.sh: passed"
exit "$fail"
