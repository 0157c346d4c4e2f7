#!/bin/bash
# tests/reference/make_golden.sh — write the PyTorch golden state that tinyds's "golden" tests compare against.
#
#   TINYDS_EXE=build/tinyds tests/reference/make_golden.sh DIR
#       1. $TINYDS_EXE init --preset nano --seed 7 --out DIR/nano_init.safetensors     (tinyds's own init)
#       2. /usr/bin/python3 check_reference.py     (self-tests of the twin and of the safetensors reader)
#       3. /usr/bin/python3 golden.py --ckpt DIR/nano_init.safetensors --out DIR/nano_golden.safetensors
#       4. MLA, only if `$TINYDS_EXE init --help` mentions --kv-lora-rank (otherwise a note is printed and the MLA
#          files are absent):
#          $TINYDS_EXE init --preset nano --attention mla --q-lora-rank 8 --kv-lora-rank 12 --rope-dim 4
#            --n-kv-head 4 --seed 7 --out DIR/nano_mla_init.safetensors,
#          then golden.py -> DIR/nano_mla_golden.safetensors
#   tests/reference/make_golden.sh --random-init DIR
#       the same, but steps 1 and 4 write random weights from Python (make_random_ckpt.py [--attention mla])
#       instead of `tinyds init`: for exercising the Python side without the C++ tool.
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
mla_flags=(--attention mla --q-lora-rank 8 --kv-lora-rank 12 --rope-dim 4)   # nano: C 32, H 4, D 8
# tinyds requires n_kv_head = n_head for mla and the nano preset's n_kv_head is 2 (gqa): say 4 explicitly.
# (make_random_ckpt.py sets n_kv_head = n_head itself.)
tinyds_mla_flags=("${mla_flags[@]}" --n-kv-head 4)

[ -x "$py" ] || die "$py not found: run make deps (installs python3, python3-numpy, python3-torch)"
"$py" -c "import numpy" 2>/dev/null || die "numpy not importable with $py: run make deps"
"$py" -c "import torch" 2>/dev/null || die "torch not importable with $py: run make deps"

# Never let a stale file from an earlier run pass for this run's output (an MLA golden left over from a tool
# that supported MLA must not be compared after the MLA part is skipped).
rm -f "$init" "$golden" "$mla_init" "$mla_golden"
if [ "$random_init" = 1 ]; then
  "$py" "$here/make_random_ckpt.py" --preset nano --seed 7 --out "$init" \
    || die "make_random_ckpt.py failed"
else
  [ -n "${TINYDS_EXE:-}" ] || die "TINYDS_EXE is not set: point it at the tinyds binary (or pass --random-init)"
  [ -x "$TINYDS_EXE" ] || die "TINYDS_EXE='$TINYDS_EXE' is not an executable file (build it: make)"
  "$TINYDS_EXE" init --preset nano --seed 7 --out "$init" \
    || die "'$TINYDS_EXE init --preset nano --seed 7 --out $init' failed"
  [ -f "$init" ] || die "tinyds init exited 0 but wrote no $init"
fi

"$py" "$here/check_reference.py" || die "the PyTorch twin failed its self-tests (check_reference.py)"
"$py" "$here/golden.py" --ckpt "$init" --out "$golden" || die "golden.py failed on $init"
[ -f "$golden" ] || die "golden.py exited 0 but wrote no $golden"
echo "make_golden.sh: wrote $golden"

# MLA golden: the same pipeline on an MLA checkpoint, when the tool can write one.
if [ "$random_init" = 1 ]; then
  "$py" "$here/make_random_ckpt.py" --preset nano "${mla_flags[@]}" --seed 7 --out "$mla_init" \
    || die "make_random_ckpt.py ${mla_flags[*]} failed"
else
  # Captured, not piped into grep -q: grep closing the pipe early could kill the tool with SIGPIPE (pipefail).
  init_help="$("$TINYDS_EXE" init --help 2>&1 || true)"
  case "$init_help" in
    *--kv-lora-rank*) ;;
    *) echo "make_golden.sh: note: '$TINYDS_EXE init --help' does not mention --kv-lora-rank;" \
            "skipping the MLA golden state ($mla_golden not written)"
       exit 0 ;;
  esac
  "$TINYDS_EXE" init --preset nano "${tinyds_mla_flags[@]}" --seed 7 --out "$mla_init" \
    || die "'$TINYDS_EXE init --preset nano ${tinyds_mla_flags[*]} --seed 7 --out $mla_init' failed"
  [ -f "$mla_init" ] || die "tinyds init exited 0 but wrote no $mla_init"
fi
"$py" "$here/golden.py" --ckpt "$mla_init" --out "$mla_golden" || die "golden.py failed on $mla_init"
[ -f "$mla_golden" ] || die "golden.py exited 0 but wrote no $mla_golden"
echo "make_golden.sh: wrote $mla_golden"
