// kernels/moe_grouped_matmul.cuh — host launchers of the grouped expert GEMMs (kernels/moe_grouped_matmul.cu): one
// launch computes every routed expert's linear layer on its contiguous slice of the expert-sorted rows.
//
// Shapes: P sorted rows (= N*K pairs), E experts, IC input width, OC output width; expert e owns rows
// [expert_offsets[e], expert_offsets[e+1]) (from moe_dispatch_sort) and its weight is rows e*OC..(e+1)*OC of
// weight (E, OC, IC) — the layout of MoeWeights::w1, w3 (OC = F, IC = C) and w2 (OC = C, IC = F).
// CPU reference: the per-expert loops of tinyds/model/moe_layer.cpp (routed_experts_forward/backward), i.e. one
// tinyds/ops/matmul.h call per non-empty expert. Argument order follows matmul (out, inp, weight, ..., IC, OC).
// Launchers launch and return; expert_offsets is a device array (its values never go back to the host).
#pragma once

namespace tinyds::cuda {

// out (P, OC) written: out[r] = inp[r] @ weight_e^T for r in expert e's rows.   inp (P, IC), weight (E, OC, IC)
// version 0 = 2 (shared-memory tiles over (expert, row tile, column tile)), 1 = one thread per output.
void moe_grouped_matmul_forward(float* out, const float* inp, const float* weight, const int* expert_offsets, int P,
                                int IC, int OC, int E, int version = 0);

// dinp (P, IC) WRITTEN (skipped when nullptr): dinp[r] = dout[r] @ weight_e
// dweight (E, OC, IC) ACCUMULATED: dweight_e += dout_e^T @ inp_e (an expert with no rows gets + 0)
//   dout (P, OC), inp (P, IC), weight (E, OC, IC)
void moe_grouped_matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                 const float* weight, const int* expert_offsets, int P, int IC, int OC, int E,
                                 int version = 0);

}  // namespace tinyds::cuda
