// kernels/bench.h — `tinyds bench --kernels`: times every version of the CUDA kernels in kernels/ at one
// model-sized shape each. Under the CPU emulation (the build the `tinyds` command links) the times are CPU times of
// the emulated kernels, useful to compare versions' emulation cost, not GPU figures; the table says so.
#pragma once

namespace tinyds::cuda {

// Prints one line per (op, version): median time per call over `reps` calls after one warm-up call, and GFLOP/s
// or GB/s. Returns the number of rows timed.
int bench_kernels(int reps);

}  // namespace tinyds::cuda
