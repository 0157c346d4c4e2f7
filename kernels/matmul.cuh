// kernels/matmul.cuh — host launchers of the matmul (linear layer) kernels (kernels/matmul.cu), on device pointers.
// Mirrors tinyds/ops/matmul.h. Shapes: N rows, IC input width, OC output width.
// dinp WRITTEN (=), dweight and dbias ACCUMULATED (+=).
#pragma once

namespace tinyds::cuda {

// out (N, OC) = inp (N, IC) @ weight^T + bias;  weight (OC, IC), bias (OC) or nullptr.
// version 1: naive, 2: shared-memory tiles, 3: register-blocked 2D tiles (the default, 0),
// 4: cuBLAS (native build only).
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int IC, int OC,
                    int version = 0);
// dinp (N, IC) = dout @ weight (written; skipped when nullptr); dweight (OC, IC) += dout^T @ inp;
// dbias (OC) += sum_n dout (skipped when nullptr). Versions as for forward.
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC, int version = 0);

}  // namespace tinyds::cuda
