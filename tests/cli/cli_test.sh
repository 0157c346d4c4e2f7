#!/usr/bin/env bash
# tests/cli/cli_test.sh — the `tinyds` command's bad-input behaviour, end to end: every case must exit non-zero and
# print a message naming what was wrong. Usage: cli_test.sh /path/to/tinyds
set -u
exe="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0; fail=0

# expect_error DESCRIPTION EXPECTED_SUBSTRING -- command...
expect_error() {
  local what="$1" want="$2"; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -qF -- "$want"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL: $what (exit $rc): expected an error containing '$want', got: $out"
  fi
}
expect_ok() {
  local what="$1" want="$2"; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -qF -- "$want"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL: $what (exit $rc): expected success with '$want', got: $out"
  fi
}

expect_error "unknown command"        "unknown command 'fly'"       -- "$exe" fly
expect_error "unknown option"         "unknown option '--bogus'"    -- "$exe" sft --bogus 1
expect_error "bad number"             "option --lr: 'abc'"          -- "$exe" sft --lr abc
expect_error "missing value"          "option --steps needs a value" -- "$exe" sft --steps
expect_error "unknown preset"         "unknown preset 'huge'"       -- "$exe" sft --preset huge
expect_error "bad config combination" "must be divisible by model.n_head" -- "$exe" init --d-model 30 --out "$dir/x.safetensors"
expect_error "bad level"              "level"                       -- "$exe" data --level 7 --out "$dir/x.jsonl"
expect_error "missing required"       "missing required option --out" -- "$exe" data --level 1
expect_error "missing checkpoint"     "$dir/none.safetensors"       -- "$exe" sample --ckpt "$dir/none.safetensors" --prompt hi
printf 'not a checkpoint at all' > "$dir/garbage.safetensors"
expect_error "garbage checkpoint"     "$dir/garbage.safetensors"    -- "$exe" eval --ckpt "$dir/garbage.safetensors"
expect_ok    "init"                   "wrote"                       -- "$exe" init --preset nano --out "$dir/ok.safetensors"
head -c 1000 "$dir/ok.safetensors" > "$dir/truncated.safetensors"
expect_error "truncated checkpoint"   "$dir/truncated.safetensors"  -- "$exe" sample --ckpt "$dir/truncated.safetensors" --prompt hi
expect_error "character outside vocab" "position 2"                 -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt $'ab\tc'
expect_error "bad sampling value"     "top_p"                       -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt hi --top-p 0
printf '{"question": "q", "answer": "no marker"}\n' > "$dir/bad.jsonl"
expect_error "bad JSONL"              "$dir/bad.jsonl:1"            -- "$exe" eval --ckpt "$dir/ok.safetensors" --test-file "$dir/bad.jsonl"
expect_ok    "help lists defaults"    "[default: 0.0007]"            -- "$exe" sft --help
expect_error "AdamW beta2 out of range" "train.beta2 = 1"           -- "$exe" sft --beta2 1 --steps 1
expect_ok    "pad drills can be turned off" "(levels [1]), B" -- "$exe" sft --no-pad-drills --steps 1 --eval-problems 0 --ckpt-every 0 --out "$dir/nopad"
expect_ok    "small preset pads with drills" "padding filled from"        -- "$exe" sft --steps 1 --eval-problems 0 --ckpt-every 0 --out "$dir/pad"
expect_ok    "data-parallel replicas"  "(2 data-parallel replicas)"  -- "$exe" sft --replicas 2 --steps 1 --eval-problems 0 --ckpt-every 0 --out "$dir/dp"
expect_error "negative replicas"       "replicas = -1"               -- "$exe" sft --replicas -1 --steps 1 --eval-problems 0 --ckpt-every 0 --out "$dir/dp"
expect_error "unknown device"          "unknown device 'tpu'"        -- "$exe" sft --device tpu --steps 1
expect_ok    "sft prints its device"   "[sft] device: cpu"            -- "$exe" sft --preset nano --steps 1 --seq-len 64 --eval-problems 0 --ckpt-every 0 --out "$dir/dev_cpu"
expect_ok    "sft on cuda"             "[sft] device: cuda"           -- "$exe" sft --preset nano --device cuda --steps 1 --seq-len 64 --eval-problems 0 --ckpt-every 0 --out "$dir/dev_cuda"
expect_ok    "pretrain on cuda"        "[pretrain] device: cuda"      -- "$exe" pretrain --preset nano --device cuda --steps 1 --eval-problems 0 --ckpt-every 0 --out "$dir/dev_pre"
expect_ok    "cuda runs one replica"   "--replicas 2 ignored on cuda" -- "$exe" sft --preset nano --device cuda --replicas 2 --steps 1 --seq-len 64 --eval-problems 0 --ckpt-every 0 --out "$dir/dev_dp"
expect_error "grpo without --init"    "missing required option --init" -- "$exe" grpo
expect_error "grpo with G < 2"        "--num-generations = 1"       -- "$exe" grpo --init "$dir/ok.safetensors" --num-generations 1
expect_error "grpo bad loss type"     "--loss-type 'ppo'"           -- "$exe" grpo --init "$dir/ok.safetensors" --loss-type ppo
expect_error "grpo bad --check-steps" "--check-steps: 'maybe' is not true or false" -- "$exe" grpo --init "$dir/ok.safetensors" --check-steps maybe
expect_error "grpo prompt distractors" "--prompt-distractors = 1.5" -- "$exe" grpo --init "$dir/ok.safetensors" --prompt-distractors 1.5
expect_ok    "grpo help lists beta"   "[default: 0.04]"             -- "$exe" grpo --help
expect_error "grpo unknown device"     "--device: unknown device 'gpu'" -- "$exe" grpo --init "$dir/ok.safetensors" --device gpu
expect_error "grpo reinforce on cuda" "REINFORCE's loss has no kernel" -- "$exe" grpo --init "$dir/ok.safetensors" --device cuda --algo reinforce
expect_ok    "grpo on cuda keeps the SFT term" "| ptx "             -- "$exe" grpo --init "$dir/ok.safetensors" --device cuda --steps 1 --prompts-per-step 1 --num-generations 2 --max-completion-length 4 --eval-problems 0 --levels 1 --n-train 2 --out "$dir/grpo_cuda_ptx"
expect_ok    "grpo's default SFT term" "| ptx "                     -- "$exe" grpo --init "$dir/ok.safetensors" --steps 1 --prompts-per-step 1 --num-generations 2 --max-completion-length 4 --eval-problems 0 --levels 1 --n-train 2 --out "$dir/grpo_ptx"
expect_ok    "ppo's default SFT term" "| ptx "                      -- "$exe" ppo --init "$dir/ok.safetensors" --steps 1 --batch-size 2 --response-length 4 --eval-problems 0 --levels 1 --n-prompts 4 --out "$dir/ppo_ptx"
expect_ok    "grpo on cuda"           "device: cuda"                -- "$exe" grpo --init "$dir/ok.safetensors" --device cuda --steps 1 --prompts-per-step 1 --num-generations 2 --max-completion-length 4 --eval-problems 0 --levels 1 --n-train 2 --out "$dir/grpo_cuda" --quiet
expect_error "distill without teacher" "missing required option --teacher" -- "$exe" distill
expect_error "distill --init and --preset" "--preset cannot be combined with --init" -- "$exe" distill --teacher "$dir/ok.safetensors" --init "$dir/ok.safetensors" --preset small
expect_error "distill bad alpha"      "--alpha = 2"                 -- "$exe" distill --teacher "$dir/ok.safetensors" --alpha 2
expect_error "distill bad divergence" "--divergence 'jsd'"          -- "$exe" distill --teacher "$dir/ok.safetensors" --divergence jsd
# A fresh student of a preset whose train.seq_len (small: 224) exceeds the teacher's context gets to the data check.
expect_error "distill fresh small student" "fits the model's max_seq_len = 64" -- "$exe" distill --teacher "$dir/ok.safetensors" --preset small --n-layer 1 --d-model 32 --n-head 2 --n-kv-head 2 --steps 1
expect_ok    "distill help lists T"   "[default: 2]"                -- "$exe" distill --help
expect_error "rm without --init"      "missing required option --init" -- "$exe" rm
expect_error "rm bad corruption"      "--corruption 'typo'"         -- "$exe" rm --init "$dir/ok.safetensors" --corruption typo
expect_error "rm bad batch size"      "--batch-size = 0"            -- "$exe" rm --init "$dir/ok.safetensors" --batch-size 0
expect_error "dpo without --init"     "missing required option --init" -- "$exe" dpo
expect_error "dpo bad loss type"      "--loss-type 'hinge'"         -- "$exe" dpo --init "$dir/ok.safetensors" --loss-type hinge
expect_error "dpo beta 0"             "--beta = 0"                  -- "$exe" dpo --init "$dir/ok.safetensors" --beta 0
expect_ok    "dpo help lists beta"    "[default: 0.1]"              -- "$exe" dpo --help
expect_ok    "eval lists wrong answers" "(expected "                -- "$exe" eval --ckpt "$dir/ok.safetensors" --n 3 --max-new-tokens 4 --errors 2
expect_error "eval negative --errors" "--errors must be >= 0"       -- "$exe" eval --ckpt "$dir/ok.safetensors" --errors -1
expect_ok    "eval pass@k"            "pass@3"                      -- "$exe" eval --ckpt "$dir/ok.safetensors" --n 2 --max-new-tokens 4 --samples 3 --temperature 1
expect_ok    "eval on cuda"           "device: cuda"                -- "$exe" eval --ckpt "$dir/ok.safetensors" --device cuda --n 2 --max-new-tokens 4 --samples 2
expect_error "eval negative --samples" "--samples must be >= 0"     -- "$exe" eval --ckpt "$dir/ok.safetensors" --samples -1
expect_error "eval samples greedy"    "--temperature must be > 0"   -- "$exe" eval --ckpt "$dir/ok.safetensors" --samples 2 --temperature 0
expect_ok    "eval --compare itself"  "change +0.0 points (standard error 0.0); right only under A 0, only under B 0: McNemar exact p = 1" -- "$exe" eval --ckpt "$dir/ok.safetensors" --compare "$dir/ok.safetensors" --n 3 --max-new-tokens 4
expect_error "eval --compare missing" "$dir/none.safetensors"       -- "$exe" eval --ckpt "$dir/ok.safetensors" --compare "$dir/none.safetensors"
# eval's held-out problems are those of the checkpoint's training seed unless --seed is given (the set its trainer
# evaluated on): the same wrong answers as with --seed 77, other ones than with --seed 1337 (an untrained model gets
# every problem wrong, so --errors lists each problem with its expected answer).
"$exe" init --preset nano --seed 77 --out "$dir/seed77.safetensors" > /dev/null
heldout() { "$exe" eval --ckpt "$dir/seed77.safetensors" --n 2 --max-new-tokens 2 --errors 2 "$@" 2>&1 | grep -F "(expected"; }
set_default=$(heldout); set_77=$(heldout --seed 77); set_1337=$(heldout --seed 1337)
if [ -n "$set_default" ] && [ "$set_default" = "$set_77" ] && [ "$set_default" != "$set_1337" ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL: eval's default held-out set: default '$set_default', seed 77 '$set_77', seed 1337 '$set_1337'"
fi
expect_ok    "sample runs"            "hi"                          -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt hi --max-new-tokens 3
expect_error "speculative needs greedy" "needs greedy decoding"     -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt hi --speculative --temperature 0.7
expect_ok    "init dense"             "wrote"                       -- "$exe" init --preset nano-dense --out "$dir/dense.safetensors"
expect_error "speculative needs MTP"  "mtp_depth = 0"               -- "$exe" sample --ckpt "$dir/dense.safetensors" --prompt hi --speculative
expect_ok    "speculative runs"       "identical to plain greedy: yes" -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt hi --max-new-tokens 8 --speculative
expect_ok    "sample on cuda"         "device: cuda"                -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt hi --max-new-tokens 3 --device cuda
expect_error "sample unknown device"  "--device: unknown device 'gpu'" -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt hi --device gpu
expect_error "speculative on cuda"    "drop --device cuda"          -- "$exe" sample --ckpt "$dir/ok.safetensors" --prompt hi --speculative --device cuda
expect_ok    "kvcache runs"           "98.2%"                       -- "$exe" kvcache --no-bench
expect_error "bench unknown device"   "--device: unknown device 'tpu'" -- "$exe" bench --device tpu
expect_error "bench unknown GPU"      "no peak figures for 'Voodoo'" -- "$exe" bench --device cuda --analysis --gpu Voodoo
expect_ok    "bench device analysis"  "current kernels (v3 GEMM, SM fill)" -- "$exe" bench --device cuda --analysis --preset nano --gpu "H100 PCIe"
expect_ok    "bench device help"      "usage: tinyds bench --device cuda" -- "$exe" bench --device cuda --help
expect_ok    "bench device timing"    "NOT GPU figures"             -- "$exe" bench --device cuda --preset nano --steps 1 --warmup 0
expect_ok    "demo pipeline (nano)"   "levels [1,2,4] (4:2:1), 10 steps in" -- "$exe" demo --preset nano --steps 10 --max-seq-len 256 --seq-len 224 --grpo-steps 2 --prompts-per-step 2 --num-generations 2 --eval-problems 2 --out "$dir/demo"
# The demo draws its curves where Debian's python3-matplotlib is installed (elsewhere it says why not and goes on).
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  if [ -s "$dir/demo/curves.png" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: the demo wrote no $dir/demo/curves.png"; fi
fi
expect_ok    "demo other levels: equal shares" "levels [1,2,3], 2 steps in" -- "$exe" demo --preset nano --levels 1,2,3 --steps 2 --max-seq-len 256 --seq-len 224 --grpo-steps 1 --prompts-per-step 2 --num-generations 2 --eval-problems 1 --out "$dir/demo3"
expect_error "level weights per level" "one per entry of data.levels (2)" -- "$exe" sft --levels 1,2 --level-weights 2,1,1 --steps 1 --out "$dir/lw"
expect_error "distractor share"       "data.distractors = 1.5"      -- "$exe" sft --preset nano --distractors 1.5 --steps 1 --out "$dir/dis"
expect_error "data distractor share"  "option --distractors: -1"    -- "$exe" data --level 3 --n 2 --distractors -1 --out "$dir/dis.jsonl"
expect_ok    "data with distractors"  "wrote 6 level-3"             -- "$exe" data --level 3 --n 6 --distractors 1 --before-question true --out "$dir/dis.jsonl"
# Every question: one of the sentences, then the question asked (drawn boundaries give 4 of these 6).
if [ "$(grep -c -E '[.] (Birds sing|It is sunny|The sky is clear|The clock|Everyone|The room|A dog|It rained|The radio|Nobody)[^?]*[.] (How|What)' "$dir/dis.jsonl")" = 6 ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL: tinyds data --distractors 1 --before-question true: no sentence before the question asked"; cat "$dir/dis.jsonl"
fi
expect_error "demo bad GRPO option"   "--num-generations = 1"       -- "$exe" demo --preset nano --steps 1 --num-generations 1 --out "$dir/demo1"
# Every command's --help runs (an option registered twice is an error at registration) and names each option once.
for cmd in $("$exe" --help | awk '/^commands:/ {on = 1; next} on && NF {print $1}'); do
  expect_ok "$cmd --help runs"        "usage: tinyds $cmd"          -- "$exe" "$cmd" --help
  dup=$("$exe" "$cmd" --help | grep -oE '^  --[a-z0-9-]+' | sort | uniq -d)
  if [ -z "$dup" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $cmd --help lists twice: $dup"; fi
done
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
