#!/usr/bin/env bash
# tests/cli/reliability_test.sh — training that fails cleanly: divergence, option values out of range, file-size
# limits, non-ASCII input files and --resume's option handling, end to end through the `tinyds` command. Every
# failure must exit 1 with a message naming what was wrong; no case may die by a signal.
# Usage: reliability_test.sh /path/to/tinyds
set -u
exe="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=2
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_error DESCRIPTION EXPECTED_SUBSTRING -- command...   (exit status exactly 1: an error, not a signal)
expect_error() {
  local what="$1" want="$2"; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -qF -- "$want"; then ok
  else bad "$what (exit $rc): expected an error containing '$want', got: $out"; fi
}
expect_ok() {
  local what="$1" want="$2"; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq 0 ] && { [ -z "$want" ] || printf '%s' "$out" | grep -qF -- "$want"; }; then ok
  else bad "$what (exit $rc): expected success with '$want', got: $out"; fi
}
nano=(--preset nano --seq-len 64 --eval-problems 0 --quiet)

# Options out of range, refused when parsed.
expect_error "lr overflows float"      "option --lr: '1e39'"          -- "$exe" sft --lr 1e39 --steps 1
expect_error "negative --ckpt-every"   "train.ckpt_every"            -- "$exe" sft "${nano[@]}" --ckpt-every -1 --out "$dir/n"
expect_error "negative --stop-after"   "option --stop-after: -5"     -- "$exe" sft "${nano[@]}" --stop-after -5 --out "$dir/n"
expect_error "zero answer tokens"      "leaves no answer token"      -- "$exe" sft --preset nano --steps 1 --eval-problems 0 --out "$dir/z"
expect_ok    "init"                    "wrote"                       -- "$exe" init --preset nano --out "$dir/i.safetensors"
expect_error "init over a file"        "exists; pass --force"        -- "$exe" init --preset nano --out "$dir/i.safetensors"
expect_ok    "init --force"            "wrote"                       -- "$exe" init --preset nano --out "$dir/i.safetensors" --force
expect_error "temperature overflows"   "option --temperature: '1e39'" -- "$exe" sample --ckpt "$dir/i.safetensors" --prompt 1+1 --temperature 1e39
expect_error "negative max-new-tokens" "option --max-new-tokens: -1" -- "$exe" sample --ckpt "$dir/i.safetensors" --prompt 1+1 --max-new-tokens -1

# Divergence: stops with a message naming the step; the checkpoint on disk is the last good one and loads.
expect_error "divergence"              "training diverged at step"   -- "$exe" sft "${nano[@]}" --lr 1e6 --grad-clip 0 --replicas 2 --ckpt-every 1 --steps 50 --out "$dir/div"
# Its weights are finite but can be so large that a forward overflows: evaluating it either works or says which
# file failed (never "not finite" without a file name).
out=$("$exe" eval --ckpt "$dir/div/latest.safetensors" --n 1 --max-new-tokens 1 2>&1); rc=$?
if [ "$rc" -eq 0 ] || { [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -qF "$dir/div/latest.safetensors: the model's forward failed"; }; then ok
else bad "last good checkpoint (exit $rc): $out"; fi

# The post-training trainers stop the same way: exit 1 naming the step and their own learning-rate option, from a
# fresh nano with room for level-1 problems, at an absurd learning rate without clipping (weight decay 0.1 grows the
# weights even where a gradient is 0).
expect_ok    "init for post-training"  "wrote"                       -- "$exe" init --preset nano --max-seq-len 160 --out "$dir/p.safetensors"
pt=(--steps 30 --max-grad-norm 0 --weight-decay 0.1 --warmup 0 --ckpt-every 1 --quiet)
expect_error "dpo divergence"          "(lower --lr)"                -- "$exe" dpo --init "$dir/p.safetensors" "${pt[@]}" --lr 1e6 --batch-size 2 --n-train 8 --eval-problems 0 --out "$dir/pdpo"
expect_error "rm divergence"           "(lower --lr)"                -- "$exe" rm --init "$dir/p.safetensors" "${pt[@]}" --lr 1e6 --batch-size 2 --n-train 8 --eval-pairs 0 --out "$dir/prm"
expect_error "distill divergence"      "(lower --lr)"                -- "$exe" distill --teacher "$dir/p.safetensors" "${pt[@]}" --lr 1e6 --min-lr 0 --batch-size 2 --n-train 8 --eval-problems 0 --out "$dir/pdis"
expect_error "grpo divergence"         "(lower --lr)"                -- "$exe" grpo --init "$dir/p.safetensors" "${pt[@]}" --lr 1e6 --prompts-per-step 2 --num-generations 2 --max-completion-length 4 --n-train 8 --eval-problems 0 --out "$dir/pgrpo"
expect_error "ppo divergence"          "(lower --learning-rate)"     -- "$exe" ppo --init "$dir/p.safetensors" "${pt[@]}" --levels 1 --freezing-actor-steps 0 --learning-rate 1e6 --critic-learning-rate 1e6 --ppo-epochs 1 --batch-size 2 --response-length 4 --n-prompts 8 --eval-problems 0 --out "$dir/pppo"
for d in pdpo prm pdis pgrpo pppo; do
  [ -e "$dir/$d/final.safetensors" ] && bad "$d wrote a final checkpoint after diverging" || ok
done

# A file-size limit (ulimit -f, in 512-byte blocks): an error naming the checkpoint, no SIGXFSZ, no .tmp left.
out=$( (ulimit -f 100; exec "$exe" sft "${nano[@]}" --steps 2 --ckpt-every 1 --out "$dir/fsize") 2>&1 ); rc=$?
if [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -qF "$dir/fsize/latest.safetensors" && [ ! -e "$dir/fsize/latest.safetensors.tmp" ]; then ok
else bad "file-size limit (exit $rc): $out; $(ls "$dir/fsize")"; fi

# --resume: the checkpoint's own config (a nano run resumes without --preset); other options refused by name.
expect_ok    "run to resume"           ""                            -- "$exe" sft "${nano[@]}" --steps 4 --stop-after 2 --out "$dir/r"
expect_error "resume refuses --lr"     "cannot change it: --batch-size, --lr" -- "$exe" sft --resume "$dir/r/latest.safetensors" --lr 0.1 --batch-size 3 --out "$dir/r"
expect_error "resume and init"         "exclude each other"          -- "$exe" sft --resume "$dir/r/latest.safetensors" --init "$dir/i.safetensors" --out "$dir/r"
expect_ok    "resume without --preset" "done: 4 steps"               -- "$exe" sft --resume "$dir/r/latest.safetensors" --out "$dir/r"

# GSM8K files with characters outside the tokenizer: FILE:LINE:COLUMN when read (before any step); --ascii-fold.
printf '{"question": "What is 2+2?", "answer": "2+2=4\\n#### 4"}\n{"question": "Tom\xe2\x80\x99s 2 apples", "answer": "#### 2"}\n' > "$dir/u.jsonl"
expect_error "non-ASCII train file"    "$dir/u.jsonl:2:18: character U+2019" -- "$exe" sft "${nano[@]}" --steps 1 --train-file "$dir/u.jsonl" --out "$dir/u"
expect_error "non-ASCII test file, before training" "$dir/u.jsonl:2:18" -- "$exe" sft "${nano[@]}" --steps 1 --test-file "$dir/u.jsonl" --out "$dir/t"
[ -e "$dir/t/final.safetensors" ] && bad "the test file was read only after training" || ok
expect_ok    "--ascii-fold trains"     ""                            -- "$exe" sft "${nano[@]}" --steps 1 --train-file "$dir/u.jsonl" --ascii-fold --out "$dir/u"

echo "reliability_test.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
