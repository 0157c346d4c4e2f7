// tinyds/posttrain/ptx.h — PPO-ptx's SFT term (InstructGPT, arXiv 2203.02155, Eq. 2), shared by `tinyds grpo` and
// `tinyds ppo`: each optimizer step of the RL objective also descends gamma x the SFT objective on one batch of the
// checkpoint's own SFT data (standing for the paper's pretraining data), so the levels the checkpoint was fine-tuned
// on are pulled back while RL moves the policy.
//
//   objective(theta) = RL objective + gamma * E_{x ~ D_sft}[ SFT loss ]      (Eq. 2's gamma E_pretrain[log pi], sign
//                                                                           flipped: both terms are descended)
// Shapes: the batch b is (B, T) tokens and targets of `tinyds sft` (the prompt masked: targets -1 there).
#pragma once
#include <memory>

#include "tinyds/data/batch.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/batch_source.h"

namespace tinyds {

// grads = gamma * d(SFT objective)/d(params) on the teacher-forced batch b (B, T): the objective `tinyds sft` descends
// (main loss on the answers, MTP, balance), forward and backward on the policy's device, the grads scaled where they
// live. Returns that objective. Call it first in a pass, after zero_grad and before the RL forward: the RL forward
// then leaves its own activations for the RL backward, which adds its gradient to these.
double ptx_gradient(Transformer<float>& policy, const Batch& b, float gamma);

// The SFT batches of the term: the checkpoint's own SFT data and batch order (its config's levels, level weights,
// seed and batch size; prompt masked, padding drills as in `tinyds sft`). batch(step) gives step's batch. The source
// keeps a reference to tok, which must outlive it.
std::unique_ptr<BatchSource> ptx_batches(const Config& cfg, const Tokenizer& tok);

}  // namespace tinyds
