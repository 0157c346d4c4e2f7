// tinyds/cli/cmd_sample.cpp — `tinyds sample`: complete a prompt with a trained checkpoint; with --speculative,
// greedy decoding both plainly and self-speculatively with the MTP module as drafter (model/speculative.h).
#include <cstdio>
#include <string>

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"
#include "tinyds/core/timer.h"
#include "tinyds/device/device.h"
#include "tinyds/model/sampling.h"
#include "tinyds/model/speculative.h"
#include "tinyds/model/rollout.h"
#include "tinyds/train/checkpoint.h"

namespace tinyds {

namespace {

// Greedy decoding of one prompt both ways (kv-cache Decoder each, batch 1), `repeat` times each for the timing:
// prints the completion, whether the two agree, the acceptance rate and tokens/s of each.
int sample_speculative(const LoadedCheckpoint& ck, const Transformer<float>& model, const std::vector<int>& ids,
                       const SamplingParams& sp, const std::string& shown_prompt, MlaPath path, int repeat) {
  GreedyOptions o;
  o.max_new_tokens = sp.max_new_tokens;
  o.n_tokens = ck.tokenizer.vocab_size();  // ids past the tokenizer's vocabulary are GEMM padding
  o.eos = Tokenizer::EOS;
  o.path = path;
  DecodeResult plain, spec;
  double plain_s = 0, spec_s = 0;
  long plain_tokens = 0, spec_tokens = 0;
  for (int i = 0; i < repeat; i++) {  // alternate, so a machine slowing down during the run hits both alike
    plain = greedy_decode(model, ids, o);
    spec = speculative_decode(model, ids, o);
    plain_s += plain.stats.seconds; plain_tokens += plain.stats.tokens;
    spec_s += spec.stats.seconds; spec_tokens += spec.stats.tokens;
  }
  std::printf("%s%s\n", shown_prompt.c_str(), ck.tokenizer.decode(spec.tokens).c_str());
  const bool same = spec.tokens == plain.tokens;
  std::printf("--- self-speculative greedy decoding (MTP module 0 drafts one token, the main model verifies; "
              "MLA path %s)\n", mla_path_name(path));
  std::printf("identical to plain greedy: %s (%d tokens)\n", same ? "yes" : "NO", spec.stats.tokens);
  std::printf("drafts: %d proposed, %d accepted, acceptance rate %.1f%%\n", spec.stats.proposed,
              spec.stats.accepted, 100.0 * spec.stats.acceptance_rate());
  std::printf("main-model calls after the prompt: %d speculative vs %d plain\n", spec.stats.main_calls,
              plain.stats.main_calls);
  const double plain_tps = plain_s > 0 ? plain_tokens / plain_s : 0, spec_tps = spec_s > 0 ? spec_tokens / spec_s : 0;
  std::printf("tokens/s over %d run%s each: plain greedy %.1f, speculative %.1f (%.2fx)\n", repeat,
              repeat > 1 ? "s" : "", plain_tps, spec_tps, plain_tps > 0 ? spec_tps / plain_tps : 0.0);
  if (!same) {
    std::fprintf(stderr, "error: speculative output differs from plain greedy decoding (a near-tie of two logits "
                         "in fp32, or a bug)\n");
    return 1;
  }
  return 0;
}

}  // namespace

int cmd_sample(int argc, char** argv) {
  Args a("tinyds sample", "Complete a prompt with a checkpoint: greedy (temperature 0) or temperature / top-k / top-p "
                          "sampling. The prompt is treated as a question: the model sees <bos> PROMPT '\\n'.");
  std::string ckpt, prompt;
  SamplingParams sp;
  int n = 1;
  bool raw = false;
  std::string device_arg = "cpu";
  a.add_required("--ckpt", ckpt, "checkpoint to sample from");
  a.add_required("--prompt", prompt, "the question text");
  a.add("--temperature", sp.temperature, "0 = greedy");
  a.add("--top-k", sp.top_k, "keep the k most likely tokens (0 = all)");
  a.add("--top-p", sp.top_p, "nucleus: smallest set with this probability mass");
  a.add("--max-new-tokens", sp.max_new_tokens, "longest completion");
  a.add("--seed", sp.seed, "sampling seed");
  a.add("--n", n, "number of completions");
  a.add("--device", device_arg, "cpu | cuda: where the model decodes (cuda: the CUDA kernels; in the default build "
                                "the CPU emulation of CUDA, slow)");
  a.add_flag("--raw", raw, "do not append the newline that ends a question");
  bool speculative = false;
  std::string mla_path = "absorbed";
  int repeat = 3;
  a.add_flag("--speculative", speculative,
             "greedy only: decode plainly and self-speculatively (MTP module drafts, main model verifies) and "
             "report the acceptance rate and tokens/s of both");
  a.add("--mla-path", mla_path, "with --speculative: MLA decode path, naive | absorbed");
  a.add("--repeat", repeat, "with --speculative: decodes per method for the tokens/s");
  if (!a.parse(argc, argv)) return 0;
  if (n < 1) throw_error("option --n: ", n, " must be at least 1");
  if (sp.max_new_tokens < 0) throw_error("option --max-new-tokens: ", sp.max_new_tokens, " must not be negative");
  const Device device = parse_device(device_arg, "--device");
  if (speculative && device == Device::cuda)
    throw_error("option --speculative: runs on the CPU only (the drafter's acceptance test reads the logits on the "
                "host); drop --device cuda");
  if (speculative) {
    // Checked before loading: these are mistakes in the command line, whatever the checkpoint.
    if (sp.temperature > 0)
      throw_error("option --speculative: needs greedy decoding (--temperature 0), got --temperature ", sp.temperature,
                  "; speculative decoding here verifies drafts against the greedy choice");
    if (n > 1) throw_error("option --speculative: greedy decoding gives one completion, so --n must be 1 (got ", n, ")");
    if (repeat < 1) throw_error("option --repeat: ", repeat, " must be at least 1");
    if (mla_path != "naive" && mla_path != "absorbed")
      throw_error("option --mla-path: '", mla_path, "' must be naive or absorbed");
  }
  LoadedCheckpoint ck = load_checkpoint(ckpt);
  if (speculative && ck.config.model.mtp_depth < 1)
    throw_error("option --speculative: checkpoint ", ckpt, " has mtp_depth = ", ck.config.model.mtp_depth,
                ": there is no MTP module to draft with (train with --mtp-depth 1, as the DeepSeek-style presets do)");
  require_device(device);
  // On stderr, as the timing line: stdout is the completion alone.
  std::fprintf(stderr, "device: %s\n", describe_device(device).c_str());
  Transformer<float> model(ck.config.model, Role::policy, device);
  load_params_into(ck, model);
  std::vector<int> ids = {Tokenizer::BOS};
  std::vector<int> body = ck.tokenizer.encode(raw ? prompt : prompt + "\n");  // errors name a bad character
  ids.insert(ids.end(), body.begin(), body.end());
  const std::string shown = raw ? prompt : prompt + "\n";
  if (speculative)
    return sample_speculative(ck, model, ids, sp, shown, mla_path == "naive" ? MlaPath::naive : MlaPath::absorbed,
                              repeat);
  // kv-cache decoding (model/rollout.h): one new token per sequence per step, the sequences split into chunks
  // that each run on one thread. generate() (model/sampling.h) recomputes the whole sequence for every token and
  // enters the ops' OpenMP regions each time: with two threads on a busy machine they spin-waited for most of its
  // time (notebooks/EXPERIMENTS.md, "Performance"). Sequence i draws from its own keyed stream (rollout.h).
  RolloutOptions ro;
  ro.sampling = sp;
  ro.n_tokens = ck.tokenizer.vocab_size();
  ro.eos = Tokenizer::EOS;
  ro.pad = Tokenizer::PAD;
  Timer timer;
  Rollout r;
  try {
    r = rollout(model, std::vector<std::vector<int>>(n, ids), ro);
  } catch (const Error& e) {  // finite but huge weights (a run about to diverge) overflow in the forward
    throw_error(ckpt, ": the model's forward failed: ", e.what(),
                " (weights of a run that was diverging? see its metrics.jsonl: loss and grad_norm)");
  }
  const double seconds = timer.seconds();
  long new_tokens = 0;
  for (int i = 0; i < n; i++) {
    std::vector<int> out = r.completion_ids(i);
    new_tokens += static_cast<long>(out.size());
    if (!out.empty() && out.back() == Tokenizer::EOS) out.pop_back();
    if (n > 1) std::printf("--- sample %d\n", i + 1);
    std::printf("%s%s\n", shown.c_str(), ck.tokenizer.decode(out).c_str());
  }
  std::fprintf(stderr, "%ld new tokens in %.3f s (%.0f tokens/s)\n", new_tokens, seconds, new_tokens / seconds);
  return 0;
}

}  // namespace tinyds
