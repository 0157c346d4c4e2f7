#!/bin/bash
# tests/kernels/gdb_step_test.sh PROGRAM — kernels/README.md's gdb recipe works: in PROGRAM
# (tests/kernels/gdb_step_main.cpp, built at -O0 -g) a breakpoint on a line of the kernel with a condition on
# threadIdx and blockIdx stops exactly one CUDA thread; `next` steps it; `next` over __syncthreads() returns to
# the same thread, and then the slots the other threads of the block wrote are visible. Exit 77 (skipped) without gdb or
# where gdb may not trace a process.
set -u
prog=${1:?usage: gdb_step_test.sh PROGRAM}
gdb=${GDB:-/usr/bin/gdb}
if [ ! -x "$gdb" ]; then
  echo "kernels_gdb_step: skipped: no gdb at $gdb"
  exit 77
fi
# The breakpoint goes on the line where each thread writes its slot (found by its text, so the test does not
# depend on line numbers); the line after it is the barrier.
src=$(dirname "$0")/gdb_step_main.cpp
line=$(grep -n '^ *slot\[t\] = 10.0f \* t;$' "$src" | cut -d: -f1)
[ -n "$line" ] || { echo "kernels_gdb_step: FAILED: no 'slot[t] = 10.0f * t;' line in $src"; exit 1; }
script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat >"$script" <<GDB
set pagination off
set confirm off
break gdb_step_main.cpp:$line if threadIdx.x == 5 && blockIdx.x == 1
run
printf "CHECK stop: threadIdx.x=%u blockIdx.x=%u t=%d\\n", threadIdx.x, blockIdx.x, t
next
printf "CHECK before the barrier: threadIdx.x=%u slot[5]=%g ", threadIdx.x, slot[5]
printf "slot[58] is NaN=%d\\n", slot[58] != slot[58]
next
printf "CHECK after the barrier: threadIdx.x=%u t=%d slot[58]=%g\\n", threadIdx.x, t, slot[58]
continue
GDB
# In the sanitizer build: LeakSanitizer refuses to run under a tracer, and this test is not about leaks.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
out=$(timeout 120 "$gdb" -nx -batch -x "$script" "$prog" 2>&1)
status=$?
echo "$out"
if echo "$out" | grep -q "ptrace: Operation not permitted"; then
  echo "kernels_gdb_step: skipped: gdb may not trace processes here"
  exit 77
fi
fail() {
  echo "kernels_gdb_step: FAILED: $1 (gdb exit status $status)"
  exit 1
}
# Exactly one stop: the condition picks one CUDA thread of the 128.
[ "$(echo "$out" | grep -c "Breakpoint 1, .*gdb_step_kernel")" = 1 ] || fail "the breakpoint was not hit exactly once"
echo "$out" | grep -q "^CHECK stop: threadIdx.x=5 blockIdx.x=1 t=5$" || fail "stopped in the wrong CUDA thread"
# Thread 5 has written its slot; thread 58 has not run yet (threads run in order): its slot still holds the NaN
# that every block starts with.
echo "$out" | grep -q "^CHECK before the barrier: threadIdx.x=5 slot\[5\]=50 slot\[58\] is NaN=1$" ||
  fail "next did not step thread 5 over its write to the barrier with slot[58] unwritten"
# Over the barrier: back in thread 5, and thread 58 has written 10 * 58.
echo "$out" | grep -q "^CHECK after the barrier: threadIdx.x=5 t=5 slot\[58\]=580$" ||
  fail "next over __syncthreads() did not return to thread 5 with the block's writes visible"
echo "$out" | grep -q "exited normally" || fail "the program did not run to its end"
echo "kernels_gdb_step: ok"
