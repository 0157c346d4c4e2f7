#!/usr/bin/python3
"""tests/python/test_bindings_cli.py — the Python module against the `tinyds` command line on the same checkpoint.

    PYTHONPATH=build/python TINYDS_EXE=build/tinyds /usr/bin/python3 tests/python/test_bindings_cli.py WORKDIR

The CLI trains a nano checkpoint for a few SFT steps (so its greedy completions are not those of random weights);
then, on that checkpoint,
  1. `tinyds sample` (greedy) and Model.load(...).generate(...) write the same completion, character for
     character, and so does the binding's kv-cache decoder (Model.greedy_decode, absorbed and naive MLA paths);
  2. `tinyds eval --test-file` on problems written from Python and the binding's own greedy evaluation of them agree
     on the exact-match count, the well-formed count and the mean completion length;
  3. a checkpoint saved from Python reloads in the CLI with the same greedy completion.
Exact equality is right here: both sides run the same C++ forward on the same weights with the same thread count,
and greedy decoding takes an argmax, so any difference in the logits path would change tokens.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

import tinyds

EXE = os.environ["TINYDS_EXE"]
WORK = sys.argv[1]
os.makedirs(WORK, exist_ok=True)


def cli(*args):
    r = subprocess.run([EXE, *args], capture_output=True, text=True)
    assert r.returncode == 0, f"tinyds {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def cli_sample(ckpt, question, max_new):
    out = cli("sample", "--ckpt", ckpt, "--prompt", question, "--max-new-tokens", str(max_new))
    prefix = question + "\n"
    assert out.startswith(prefix), f"unexpected sample output: {out!r}"
    return out[len(prefix):].rstrip("\n")  # the CLI prints the completion and one newline


def binding_completion(model, question, max_new):
    tok = model.tokenizer
    prompt = [tok.BOS] + tok.encode(question + "\n")
    new = model.generate([prompt], max_new_tokens=max_new)[0]
    for path in ("absorbed", "naive"):  # the kv-cache decoder agrees with the recompute-everything generator
        dec = model.greedy_decode(prompt, max_new_tokens=max_new, path=path)
        assert dec["tokens"] == new, f"greedy_decode ({path}) {dec['tokens']} != generate {new}"
    # The CLI prints the completion up to its <eos>; the binding's decode would name it ("<eos>").
    text = tok.decode(new)
    return text[: -len("<eos>")] if text.endswith("<eos>") else text


# A nano checkpoint trained by the CLI; 200 steps, so that its completions have the answer's shape
# ("3=<<66=121>>10\n#### 1<eos>"), and 128 positions, so that a level-1 problem (up to ~105 tokens) fits.
run = os.path.join(WORK, "sft")
cli("sft", "--preset", "nano", "--max-seq-len", "128", "--seq-len", "112", "--batch-size", "8", "--steps", "200",
    "--out", run, "--quiet")
ckpt = os.path.join(run, "final.safetensors")
model = tinyds.Model.load(ckpt)
assert model.config.name == "nano", model.config.name
assert model.steps == 0  # steps counts this object's train_step calls, not the checkpoint's

# 1. greedy completions, CLI vs binding
MAX_NEW = 48
questions = [p["question"] for p in tinyds.generate_problems(1, 3, seed=11, split="test")]
for q in questions:
    want = cli_sample(ckpt, q, MAX_NEW)
    got = binding_completion(model, q, MAX_NEW)
    assert got == want, f"question {q!r}:\n  cli     {want!r}\n  binding {got!r}"
print(f"ok: {len(questions)} greedy completions equal (CLI sample vs Model.generate / greedy_decode)")

# 2. exact-match evaluation on problems written from Python
problems = tinyds.generate_problems(1, 8, seed=5, split="test")
jsonl = os.path.join(WORK, "problems.jsonl")
with open(jsonl, "w") as f:
    for p in problems:
        f.write(json.dumps({"question": p["question"], "answer": p["answer"]}) + "\n")
out = cli("eval", "--ckpt", ckpt, "--test-file", jsonl, "--max-new-tokens", str(MAX_NEW))
m = re.search(r"exact match (\d+)/(\d+) = [\d.]+%, well-formed (\d+), mean completion ([\d.]+) tokens", out)
assert m, f"unexpected eval output: {out!r}"
cli_correct, cli_n, cli_mean_len = int(m[1]), int(m[2]), float(m[4])
tok = model.tokenizer
outs = model.generate([tinyds.prompt_tokens(p) for p in problems], max_new_tokens=MAX_NEW)
# Exact match reads the final answer only: the reward without its steps rule.
scores = [tinyds.score_completion(o, p["final_answer"], check_steps=False) for o, p in zip(outs, problems)]
correct = sum(int(s["accuracy"]) for s in scores)
mean_len = np.mean([len(o) for o in outs])
assert cli_n == len(problems), (cli_n, len(problems))
assert correct == cli_correct, (correct, cli_correct)
# The CLI prints one decimal: the binding's mean must round to it.
assert f"{mean_len:.1f}" == f"{cli_mean_len:.1f}", (mean_len, cli_mean_len)
print(f"ok: eval agrees: {correct}/{cli_n} correct, mean completion {mean_len:.1f} tokens")

# 3. a checkpoint written by the binding, read by the CLI
model.train_step(*tinyds.make_batch(problems, 112))  # change the weights so the file is not the CLI's own
saved = os.path.join(WORK, "from_python.safetensors")
model.save(saved)
q = questions[0]
assert cli_sample(saved, q, MAX_NEW) == binding_completion(model, q, MAX_NEW)
print("ok: a checkpoint saved from Python samples the same in the CLI")
