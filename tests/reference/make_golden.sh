#!/bin/bash
# tests/reference/make_golden.sh — write the PyTorch golden state that tinyds's "golden" tests compare against.
#
#   TINYDS_EXE=build/tinyds tests/reference/make_golden.sh DIR
#       1. $TINYDS_EXE init --preset nano-dense --seed 7 --out DIR/nano_init.safetensors     (tinyds's own init)
#       2. /usr/bin/python3 check_reference.py     (self-tests of the twin and of the safetensors reader)
#       3. /usr/bin/python3 golden.py --ckpt DIR/nano_init.safetensors --out DIR/nano_golden.safetensors
#       4. MLA, only if `$TINYDS_EXE init --help` mentions --kv-lora-rank (otherwise a note is printed and the MLA
#          files are absent):
#          $TINYDS_EXE init --preset nano-dense --attention mla --q-lora-rank 8 --kv-lora-rank 12 --rope-dim 4
#            --n-kv-head 4 --seed 7 --out DIR/nano_mla_init.safetensors,
#          then golden.py -> DIR/nano_mla_golden.safetensors
#       5. MoE + MTP ("nano_ds"), only if `$TINYDS_EXE init --help` mentions --n-routed-experts (otherwise a note):
#          $TINYDS_EXE init --preset nano-dense <the MLA flags> --n-routed-experts 4 --n-activated-experts 2
#            --n-shared-experts 1 --moe-inter-dim 16 --n-dense-layers 1 --mtp-depth 1 --balance bias+seqaux
#            --seq-aux-alpha 0.01 --bias-update-speed 0.01 --seed 7 --out DIR/nano_ds_init.safetensors,
#          then golden.py -> DIR/nano_ds_golden.safetensors
#   tests/reference/make_golden.sh --random-init DIR
#       the same, but steps 1, 4 and 5 write random weights from Python (make_random_ckpt.py [--attention mla |
#       --ds]) instead of `tinyds init`: for exercising the Python side without the C++ tool.
# CTest runs it as the "golden_reference_generate" fixture (CMakeLists.txt). Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"   # the python files live next to this script
py=/usr/bin/python3                                    # Debian's python: the one with python3-torch
die() { echo "make_golden.sh: error: $*" >&2; exit 1; }
# Idle OpenMP / OpenBLAS threads sleep rather than spin: spinning pools starve each other on 2 shared cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"

random_init=0
if [ "${1:-}" = "--random-init" ]; then random_init=1; shift; fi
[ $# -eq 1 ] || die "usage: TINYDS_EXE=path/to/tinyds $0 [--random-init] DIR"
dir="$1"
mkdir -p "$dir" || die "cannot create output folder '$dir'"
init="$dir/nano_init.safetensors"
golden="$dir/nano_golden.safetensors"
mla_init="$dir/nano_mla_init.safetensors"
mla_golden="$dir/nano_mla_golden.safetensors"
ds_init="$dir/nano_ds_init.safetensors"
ds_golden="$dir/nano_ds_golden.safetensors"
mla_flags=(--attention mla --q-lora-rank 8 --kv-lora-rank 12 --rope-dim 4)   # nano: C 32, H 4, D 8
# tinyds requires n_kv_head = n_head for mla and the nano preset's n_kv_head is 2 (gqa): say 4 explicitly.
# (make_random_ckpt.py sets n_kv_head = n_head itself.)
tinyds_mla_flags=("${mla_flags[@]}" --n-kv-head 4)
# nano_ds (config.py DS_OVERRIDES; make_random_ckpt.py --ds writes the same config): MLA as above, layer 0 dense,
# layer 1 MoE, one MTP module with an MoE block, bias+seqaux balancing.
tinyds_ds_flags=("${tinyds_mla_flags[@]}" --n-routed-experts 4 --n-activated-experts 2 --n-shared-experts 1
                 --moe-inter-dim 16 --n-dense-layers 1 --mtp-depth 1 --balance bias+seqaux --seq-aux-alpha 0.01
                 --bias-update-speed 0.01)

[ -x "$py" ] || die "$py not found: run make deps (installs python3, python3-numpy, python3-torch)"
"$py" -c "import numpy" 2>/dev/null || die "numpy not importable with $py: run make deps"
"$py" -c "import torch" 2>/dev/null || die "torch not importable with $py: run make deps"

# Never let a stale file from an earlier run pass for this run's output (an MLA golden left over from a tool
# that supported MLA must not be compared after the MLA part is skipped).
rm -f "$init" "$golden" "$mla_init" "$mla_golden" "$ds_init" "$ds_golden" "$dir"/nano_mha_*.safetensors \
      "$dir"/nano_mqa_*.safetensors
if [ "$random_init" = 1 ]; then
  "$py" "$here/make_random_ckpt.py" --preset nano --seed 7 --out "$init" \
    || die "make_random_ckpt.py failed"
else
  [ -n "${TINYDS_EXE:-}" ] || die "TINYDS_EXE is not set: point it at the tinyds binary (or pass --random-init)"
  [ -x "$TINYDS_EXE" ] || die "TINYDS_EXE='$TINYDS_EXE' is not an executable file (build it: make)"
  "$TINYDS_EXE" init --preset nano-dense --seed 7 --out "$init" \
    || die "'$TINYDS_EXE init --preset nano-dense --seed 7 --out $init' failed"
  [ -f "$init" ] || die "tinyds init exited 0 but wrote no $init"
fi

"$py" "$here/check_reference.py" || die "the PyTorch twin failed its self-tests (check_reference.py)"
"$py" "$here/golden.py" --ckpt "$init" --out "$golden" || die "golden.py failed on $init"
[ -f "$golden" ] || die "golden.py exited 0 but wrote no $golden"
echo "make_golden.sh: wrote $golden"

# tool_supports FLAG: does `$TINYDS_EXE init --help` mention FLAG? Captured, not piped into grep -q: grep closing
# the pipe early could kill the tool with SIGPIPE (pipefail).
tool_supports() {
  local init_help
  init_help="$("$TINYDS_EXE" init --help 2>&1 || true)"
  case "$init_help" in *"$1"*) return 0 ;; *) return 1 ;; esac
}

# extra_golden NAME INIT GOLDEN FLAG RANDOM_FLAGS TINYDS_FLAGS: the same pipeline on another checkpoint kind, when
# the tool can write one (--random-init: make_random_ckpt.py RANDOM_FLAGS; else tinyds init TINYDS_FLAGS, skipped
# with a note if `init --help` lacks FLAG). The flag lists are passed as single strings of words.
extra_golden() {
  local name="$1" ckpt="$2" out="$3" flag="$4" random_flags="$5" tinyds_flags="$6"
  if [ "$random_init" = 1 ]; then
    # shellcheck disable=SC2086  # word splitting of the flag list is intended
    "$py" "$here/make_random_ckpt.py" --preset nano $random_flags --seed 7 --out "$ckpt" \
      || die "make_random_ckpt.py $random_flags failed"
  else
    if ! tool_supports "$flag"; then
      echo "make_golden.sh: note: '$TINYDS_EXE init --help' does not mention $flag;" \
           "skipping the $name golden state ($out not written)"
      return 0
    fi
    # shellcheck disable=SC2086
    "$TINYDS_EXE" init --preset nano-dense $tinyds_flags --seed 7 --out "$ckpt" \
      || die "'$TINYDS_EXE init --preset nano-dense $tinyds_flags --seed 7 --out $ckpt' failed"
    [ -f "$ckpt" ] || die "tinyds init exited 0 but wrote no $ckpt"
  fi
  "$py" "$here/golden.py" --ckpt "$ckpt" --out "$out" || die "golden.py failed on $ckpt"
  [ -f "$out" ] || die "golden.py exited 0 but wrote no $out"
  echo "make_golden.sh: wrote $out"
}

# One golden per attention kind: MHA and MQA (GQA is the first one above, MLA below).
extra_golden MHA "$dir/nano_mha_init.safetensors" "$dir/nano_mha_golden.safetensors" --attention \
  "--attention mha" "--attention mha --n-kv-head 4"
extra_golden MQA "$dir/nano_mqa_init.safetensors" "$dir/nano_mqa_golden.safetensors" --attention \
  "--attention mqa" "--attention mqa --n-kv-head 1"
# MLA golden: the same pipeline on an MLA checkpoint, when the tool can write one.
extra_golden MLA "$mla_init" "$mla_golden" --kv-lora-rank "${mla_flags[*]}" "${tinyds_mla_flags[*]}"
# DeepSeek-style golden (MLA + MoE + MTP, the Python preset "nano_ds"), when the tool can write one.
extra_golden "MoE+MTP (nano_ds)" "$ds_init" "$ds_golden" --n-routed-experts "--ds" "${tinyds_ds_flags[*]}"
