// tinyds/train/roofline.h — what one training step asks of a GPU, kernel by kernel, and the least time each kernel
// can take there: `tinyds bench --device cuda --analysis` (no GPU needed: everything is computed from the config's
// shapes and a device's datasheet peaks, tinyds/device/peak_flops.h).
//
// Shapes: B batch, T time, N = B*T rows, C d_model, V vocab, H heads, D head_dim, R rope_dim, Q q_lora_rank,
// L kv_lora_rank, F ffn_hidden, E routed experts, K active experts, Fe moe_inter_dim, Ns shared experts,
// P = N*K routed pairs, Np = number of parameters.
//
// Each row is one kernel launch of the device path as the model calls its ops (tinyds/device/ops.h, the version 0
// kernels of kernels/): a matmul is one launch forward and two backward (dinp, dweight); MLA's column copies are one
// copy per head; the routed experts run one GEMM per expert and projection, each expert given P/E rows (a perfectly
// balanced router). Per launch:
//   flops  multiply-adds x 2 of the products (GEMMs, attention's QK^T and PV), a nominal few per element elsewhere
//   bytes  compulsory DRAM traffic: every operand read once and every output written once (a kernel that re-reads
//          from DRAM, as a tiled GEMM does for large operands, moves more; the L2 cache of 50 MB holds every
//          operand of the presets, so re-reads mostly hit it)
//   blocks thread blocks of the launch (the grid of the version 0 kernel): fewer than the GPU's SMs leave SMs idle
// Not modelled: the balance losses seqaux / aux (the presets balance with the router bias), the host round trips
// (the loss, the MoE expert offsets), cudaMemset of the activations.
#pragma once

#include <string>
#include <vector>

#include "tinyds/device/peak_flops.h"
#include "tinyds/model/config.h"

namespace tinyds {

struct KernelCost {
  std::string kernel;   // "matmul fwd", "matmul bwd dweight", "attention fwd", "rmsnorm fwd", ...
  std::string phase;    // the bench's phases: "mla", "attention", "moe", "dense ffn", "head + loss", "mtp",
                        // "embedding", "optimizer"
  std::string shape;    // e.g. "(2048, 256) -> 128": rows, input width -> output width
  long calls = 0;       // launches of this shape per training step
  double flops = 0;     // per launch
  double bytes = 0;     // per launch
  long blocks = 0;      // per launch
  bool gemm = false;    // a matrix product (attention's included): what tensor cores could run
};

// Every launch of one training step (zero_grad, forward with targets, backward, grad norm + clip, AdamW) of a model
// of config m on B sequences of T tokens, identical launches merged into one row with `calls`.
std::vector<KernelCost> training_step_kernels(const ModelConfig& m, int B, int T);

// How long a kernel takes at least on a device, in seconds per launch:
//   roofline    max(flops / peak, bytes / bandwidth) with every SM busy; peak = FP32 (or TF32 for the GEMMs when
//               `tensor_cores`)
//   tinyds v3   what the current kernels can reach: the 64x64-tile fp32 GEMM (kernels/matmul.cu version 3) issues
//               8 shared-memory loads (one wavefront each: the A values are a broadcast, the B values 16
//               consecutive words) per 16 FMAs per warp; an SM serves one wavefront and 4 warp-FMAs a clock, so
//               the GEMM runs at most at 4/8 = 50% of the FP32 peak. Every kernel runs on min(blocks, SMs) SMs
//               only (a grid smaller than the GPU leaves SMs idle; for a memory-bound kernel this assumes an SM's
//               share of the bandwidth, which is pessimistic: one SM can pull a few times its share).
struct KernelBound {
  double roofline_fp32_s = 0;   // ideal, FP32 units
  double roofline_tf32_s = 0;   // ideal, the GEMMs on TF32 tensor cores, the rest as above
  double tinyds_v3_s = 0;       // the current kernels, as above
  double intensity = 0;         // flops / bytes
  bool memory_bound = false;    // on the FP32 roofline: bytes / bandwidth > flops / peak
};
KernelBound kernel_bound(const KernelCost& k, const DevicePeak& dev);

// The step as a whole: sums of the rows times their calls.
struct StepBound {
  double flops = 0, gemm_flops = 0, bytes = 0;
  long launches = 0;
  double roofline_fp32_s = 0, roofline_tf32_s = 0, tinyds_v3_s = 0;
  // The same with each launch costing at least `launch_s` (the host's launch rate: a few microseconds per kernel
  // without CUDA graphs), i.e. sum of max(kernel time, launch_s).
  double tinyds_v3_launch_s = 0, roofline_tf32_launch_s = 0;
};
StepBound step_bound(const std::vector<KernelCost>& kernels, const DevicePeak& dev, double launch_s);

}  // namespace tinyds
