// tinyds/python/model.cpp — models from Python: tinyds.Model (float32, what training and decoding use) and
// tinyds.Model64 (the same Transformer in float64, for finite-difference checks), tinyds.Decoder (the kv-cache
// decoder, naive or absorbed MLA) and generation.
//
// Shapes: B sequences, T positions, V vocab, C width, H heads, L MLA latent rank, R rope dim, Q query latent rank,
// E routed experts, K experts per token.
// Memory: parameters, gradients and router biases are returned as zero-copy numpy views (writing into them
// changes the model); activations of the last forward are returned as copies, because the model re-carves its
// activation buffer when B*T grows and a view could then point at freed memory.
#include <pybind11/stl.h>

#include <memory>

#include "tinyds/model/decoder.h"
#include "tinyds/model/kv_cache.h"
#include "tinyds/model/sampling.h"
#include "tinyds/model/speculative.h"
#include "tinyds/model/transformer.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/python/arrays.h"
#include "tinyds/python/module.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/optimizer.h"
#include "tinyds/train/schedule.h"

namespace tinyds::python {

namespace {

// A model with the configuration it was made from, its tokenizer and (float only, made by the first train_step)
// its optimizer.
template <typename real>
struct ModelHandle {
  Config cfg;
  Tokenizer tok;
  std::unique_ptr<Transformer<real>> model;
  std::unique_ptr<AdamW> adam;  // float only
  int steps = 0;                // optimizer steps taken by train_step (the schedule's position)

  ModelHandle(const Config& c, uint64_t seed) : cfg(c) {
    cfg.validate();
    model = std::make_unique<Transformer<real>>(cfg.model);
    model->init_weights(seed);
  }
};

template <typename real>
py::array_t<real> as_view(ModelHandle<real>& h, real* base, const std::string& name, py::handle owner) {
  const TensorSpec& t = h.model->layout().find(name);  // throws naming the tensor if absent
  return view(base + t.offset, std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()), owner);
}

// The last forward's saved tensors of main layer l, by the names of transformer.h / mla.h / moe_layer.h.
template <typename real>
py::dict layer_dict(const Transformer<real>& m, int l) {
  const ModelConfig& c = m.config();
  if (l < 0 || l >= c.n_layer) throw_error("layer ", l, ": expected 0 <= layer < n_layer = ", c.n_layer);
  if (m.last_B() == 0) throw_error("layer ", l, ": no forward has run yet");
  const LayerActivations<real>& a = m.layer_activations(l);
  const py::ssize_t B = m.last_B(), T = m.last_T(), C = c.d_model, H = c.n_head;
  py::dict d;
  d["attn_in"] = copy(a.attn_in, {B, T, C});
  d["h"] = copy(a.h, {B, T, C});
  d["out"] = copy(a.out, {B, T, C});
  if (c.attention == AttentionKind::mla) {
    d["att"] = copy(a.mla.att, {B, H, T, T});
    d["c_kv"] = copy(a.mla.ckv, {B, T, c.kv_lora_rank});
    d["k_rope"] = copy(a.mla.kr, {B, T, c.rope_dim});
    d["c_q"] = copy(a.mla.cq, {B, T, c.q_lora_rank});
  } else {
    d["att"] = copy(a.att, {B, H, T, T});
  }
  if (is_moe_layer(c, l)) {
    const py::ssize_t E = c.n_routed_experts, K = c.n_activated_experts;
    d["router_logits"] = copy(a.moe.logits, {B, T, E});
    d["scores"] = copy(a.moe.scores, {B, T, E});
    d["topk_idx"] = copy(a.moe.topk_idx, {B, T, K});
    d["topk_w"] = copy(a.moe.topk_w, {B, T, K});
  }
  return d;
}

template <typename real>
double forward(ModelHandle<real>& h, const In<int>& tokens, const std::optional<In<int>>& targets) {
  if (tokens.ndim() != 2) throw_error("tokens: expected a 2-D (B, T) array, got ", tokens.ndim(), " dimensions");
  const int B = static_cast<int>(tokens.shape(0)), T = static_cast<int>(tokens.shape(1));
  const std::size_t n = static_cast<std::size_t>(B) * T;
  return h.model->forward(tokens.data(), targets ? checked(*targets, n, "targets") : nullptr, B, T);
}

// What Model and Model64 share, part 1: construction, forward, the losses, the layer internals, the router.
template <typename real>
void bind_forward(py::class_<ModelHandle<real>>& cls) {
  using H = ModelHandle<real>;
  cls.def(py::init<const Config&, uint64_t>(), py::arg("config"), py::arg("seed") = 1337,
          "a freshly initialised model of this config (weights from the seed)")
      .def_static("preset", [](const std::string& name, uint64_t seed) { return H(Config::preset(name), seed); },
                  py::arg("name"), py::arg("seed") = 1337)
      .def_property_readonly("config", [](const H& h) { return h.cfg; })
      .def_property_readonly("num_params", [](const H& h) { return h.model->num_params(); })
      .def("forward", &forward<real>, py::arg("tokens"), py::arg("targets") = std::nullopt,
           "tokens (B, T) -> the objective main + mtp + balance loss (targets (B, T), -1 masked; None: no loss)")
      .def_property_readonly("main_loss", [](const H& h) { return h.model->main_loss(); })
      .def_property_readonly("mtp_loss", [](const H& h) { return h.model->mtp_loss(); })
      .def_property_readonly("balance_loss", [](const H& h) { return h.model->balance_loss(); })
      .def_property_readonly("logits", [](const H& h) {
        const Transformer<real>& m = *h.model;
        return copy(m.logits(), {m.last_B(), m.last_T(), m.config().vocab_size});
      }, "(B, T, V) logits of the last forward (a copy)")
      .def("mtp_logits", [](const H& h, int k) {
        const Transformer<real>& m = *h.model;
        if (k < 0 || k >= m.config().mtp_depth) throw_error("mtp module ", k, ": the model has ", m.config().mtp_depth);
        return copy(m.mtp_logits(k), {m.last_B(), m.last_T(), m.config().vocab_size});
      }, py::arg("k") = 0, "(B, T, V) logits of MTP module k (predicting the token k+2 ahead) of the last forward")
      .def_property_readonly("final_hidden", [](const H& h) {
        const Transformer<real>& m = *h.model;
        return copy(m.final_hidden(), {m.last_B(), m.last_T(), m.config().d_model});
      }, "(B, T, C) x_L of the last forward, before the final norm")
      .def("layer", [](const H& h, int l) { return layer_dict(*h.model, l); }, py::arg("l"),
           "main layer l's saved tensors of the last forward (copies): attn_in, h, out (B, T, C); att (B, H, T, T); "
           "MLA: c_kv (B, T, L), k_rope (B, T, R), c_q (B, T, Q); MoE: router_logits, scores (B, T, E), topk_idx, "
           "topk_w (B, T, K)")
      .def_property_readonly("moe_layers", [](const H& h) {
        std::vector<int> out;
        const ModelConfig& c = h.model->config();
        for (int l = 0; l < c.n_layer + c.mtp_depth; l++)
          if (h.model->moe_slot(l) >= 0) out.push_back(l);
        return out;
      }, "the layer index of each MoE layer (rows of moe_bias; n_layer + k is MTP module k's block)")
      .def("moe_load", [](const H& h) { return h.model->moe_load(); },
           "per MoE layer that ran in the last forward: (token, slot) pairs routed to each expert (E)")
      .def("moe_maxvio", [](const H& h) { return h.model->moe_maxvio(); },
           "per MoE layer that ran in the last forward: MaxVio = max load / mean load - 1")
      .def_property_readonly("moe_bias", [](py::object self) {
        H& h = self.cast<H&>();
        const py::ssize_t rows = h.model->num_moe_layers(), E = h.model->config().n_routed_experts;
        return view(h.model->moe_bias(), {rows, E}, self);
      }, "(num MoE layers, E) router biases, a view (they choose experts, never weigh them)")
      .def("update_moe_bias", [](H& h) { h.model->update_moe_bias(); },
           "bias += gamma sign(mean(load) - load) with the last forward's loads (when balance has 'bias')");
}

// Part 2: backward and the named parameters and gradients.
template <typename real>
void bind_backward(py::class_<ModelHandle<real>>& cls) {
  using H = ModelHandle<real>;
  cls.def("backward", [](H& h) { h.model->backward(); },
           "gradients of the last forward's objective, accumulated into the grads (needs targets)")
      .def("backward_from_logits", [](H& h, const In<real>& dlogits) {
        const Transformer<real>& m = *h.model;
        const std::size_t n = static_cast<std::size_t>(m.last_B()) * m.last_T() * m.config().vocab_size;
        h.model->backward_from_logits(checked(dlogits, n, "dlogits"));
      }, py::arg("dlogits"), "gradients from d(loss)/d(logits) (B, T, V) of the last forward, accumulated")
      .def("zero_grad", [](H& h) { h.model->zero_grad(); })
      .def("param_names", [](const H& h) {
        std::vector<std::string> out;
        for (const TensorSpec& t : h.model->layout().tensors()) out.push_back(t.name);
        return out;
      })
      .def("param", [](py::object self, const std::string& name) {
        H& h = self.cast<H&>();
        return as_view(h, h.model->params(), name, self);
      }, py::arg("name"), "the named parameter, a view (writing into it changes the model)")
      .def("grad", [](py::object self, const std::string& name) {
        H& h = self.cast<H&>();
        return as_view(h, h.model->grads(), name, self);
      }, py::arg("name"), "the named parameter's gradient, a view");
}

py::dict decode_result(const DecodeResult& r) {
  py::dict d;
  d["tokens"] = r.tokens;
  d["proposed"] = r.stats.proposed;
  d["accepted"] = r.stats.accepted;
  d["acceptance_rate"] = r.stats.acceptance_rate();
  d["main_calls"] = r.stats.main_calls;
  d["seconds"] = r.stats.seconds;
  return d;
}

MlaPath parse_path(const std::string& s) {
  if (s == "naive") return MlaPath::naive;
  if (s == "absorbed") return MlaPath::absorbed;
  throw_error("path '", s, "': expected naive or absorbed");
}

// Clip, AdamW, router-bias update on the accumulated gradients (train/trainer.cpp's step after the backward).
double optimizer_step(ModelHandle<float>& h, std::optional<double> lr) {
  const TrainConfig& tc = h.cfg.train;
  if (!h.adam) h.adam = std::make_unique<AdamW>(h.model->layout(), Role::policy);
  const double norm = global_norm(h.model->grads(), h.model->num_params());
  if (tc.grad_clip > 0) clip_grad_norm(h.model->grads(), h.model->num_params(), norm, tc.grad_clip);
  AdamWSettings as;
  as.lr = static_cast<float>(lr ? *lr : lr_at(h.steps, tc.lr, tc.min_lr, tc.warmup_steps, tc.steps));
  as.beta1 = tc.beta1; as.beta2 = tc.beta2; as.eps = tc.adam_eps; as.weight_decay = tc.weight_decay;
  h.adam->step(h.model->params(), h.model->grads(), as);
  h.model->update_moe_bias();
  h.steps++;
  return norm;
}

// The float-only part of Model: checkpoints, the training step, decoding.
void bind_float_model(py::class_<ModelHandle<float>>& cls) {
  using H = ModelHandle<float>;
  cls.def_static("load", [](const std::string& path) {
        LoadedCheckpoint ck = load_checkpoint(path);
        H h(ck.config, ck.config.train.seed);
        load_params_into(ck, *h.model);
        h.tok = ck.tokenizer;
        return h;
      }, py::arg("path"), "the model of a checkpoint written by the tinyds CLI or Model.save")
      .def("save", [](const H& h, const std::string& path) {
        TrainState st;
        st.step = h.steps;
        st.adam_t = h.adam ? h.adam->t() : 0;
        save_checkpoint(path, h.cfg, h.tok, *h.model, h.adam.get(), st);
      }, py::arg("path"))
      .def_property_readonly("tokenizer", [](const H& h) { return h.tok; })
      .def("step", &optimizer_step, py::arg("lr") = std::nullopt,
           "one optimizer step on the gradients accumulated so far (a post-training loss's backward_from_logits, "
           "or backward): clip to config.train.grad_clip, AdamW at lr (default: config.train's warmup + cosine "
           "schedule at this step), then the router-bias update; returns the gradient norm before clipping")
      .def("train_step", [](H& h, const In<int>& tokens, const In<int>& targets) {
        // As the trainer's step (train/trainer.cpp): zero_grad, forward, backward, then the optimizer step.
        h.model->zero_grad();
        const double loss = forward(h, tokens, targets);
        h.model->backward();
        const std::vector<double> maxvio = h.model->moe_maxvio();  // this step's loads, before the bias moves
        const std::vector<std::vector<int>> load = h.model->moe_load();
        const double lr = lr_at(h.steps, h.cfg.train.lr, h.cfg.train.min_lr, h.cfg.train.warmup_steps,
                                h.cfg.train.steps);
        const double norm = optimizer_step(h, std::nullopt);
        py::dict d;
        d["loss"] = loss; d["main_loss"] = h.model->main_loss(); d["mtp_loss"] = h.model->mtp_loss();
        d["balance_loss"] = h.model->balance_loss(); d["grad_norm"] = norm; d["lr"] = lr;
        d["maxvio"] = maxvio; d["load"] = load;
        return d;
      }, py::arg("tokens"), py::arg("targets"),
      "one training step on (tokens, targets) (B, T): zero_grad, forward, backward, step(); returns loss, "
      "main_loss, mtp_loss, balance_loss, grad_norm, lr, maxvio, load (the last two per MoE layer)")
      .def_property_readonly("steps", [](const H& h) { return h.steps; })
      .def("generate", [](H& h, const std::vector<std::vector<int>>& prompts, float temperature, int top_k, float top_p,
                          int max_new_tokens, uint64_t seed) {
        SamplingParams sp;
        sp.temperature = temperature; sp.top_k = top_k; sp.top_p = top_p; sp.max_new_tokens = max_new_tokens;
        sp.seed = seed;
        return generate(*h.model, prompts, sp, h.tok.vocab_size(), Tokenizer::EOS, Tokenizer::PAD);
      }, py::arg("prompts"), py::arg("temperature") = 0.0f, py::arg("top_k") = 0, py::arg("top_p") = 1.0f,
         py::arg("max_new_tokens") = 64, py::arg("seed") = 1,
         "new tokens of each prompt (token ids starting with <bos>): greedy at temperature 0, else sampled")
      .def("greedy_decode", [](const H& h, const std::vector<int>& prompt, int max_new_tokens, const std::string& path) {
        GreedyOptions o;
        o.max_new_tokens = max_new_tokens; o.n_tokens = h.tok.vocab_size(); o.eos = Tokenizer::EOS;
        o.path = parse_path(path);
        return decode_result(greedy_decode(*h.model, prompt, o));
      }, py::arg("prompt"), py::arg("max_new_tokens") = 64, py::arg("path") = "absorbed",
         "greedy decoding with the kv-cache decoder: {tokens, main_calls, seconds, ...}")
      .def("speculative_decode", [](const H& h, const std::vector<int>& prompt, int max_new_tokens,
                                    const std::string& path) {
        GreedyOptions o;
        o.max_new_tokens = max_new_tokens; o.n_tokens = h.tok.vocab_size(); o.eos = Tokenizer::EOS;
        o.path = parse_path(path);
        return decode_result(speculative_decode(*h.model, prompt, o));
      }, py::arg("prompt"), py::arg("max_new_tokens") = 64, py::arg("path") = "absorbed",
         "greedy self-speculative decoding, MTP module 0 drafting: {tokens, proposed, accepted, acceptance_rate, ...}");
}

// A Decoder and the vocab size of its model (the logits' width).
struct DecoderHandle {
  std::unique_ptr<Decoder> d;
  int V;
};

void bind_decoder(py::module_& m) {
  py::class_<DecoderHandle>(m, "Decoder", "The kv-cache decoder of a Model (tinyds/model/decoder.h).")
      .def(py::init([](const ModelHandle<float>& h, int B, int Tmax, const std::string& path) {
             return DecoderHandle{std::make_unique<Decoder>(*h.model, B, Tmax, parse_path(path)),
                                  h.model->config().vocab_size};
           }),
           py::arg("model"), py::arg("B"), py::arg("Tmax"), py::arg("path") = "absorbed",
           py::keep_alive<1, 2>())  // the decoder reads the model's weights: keep the model alive
      .def("step", [](DecoderHandle& h, const In<int>& tokens) {
        const float* logits = h.d->step(checked(tokens, h.d->batch(), "tokens"));
        return copy(logits, {h.d->batch(), h.V});
      }, py::arg("tokens"), "(B) new tokens, one per sequence at position pos -> logits (B, V)")
      .def("step_many", [](DecoderHandle& h, const In<int>& tokens) {
        if (tokens.ndim() != 2 || tokens.shape(0) != h.d->batch())
          throw_error("tokens: expected (B = ", h.d->batch(), ", T) token ids, got ", tokens.ndim(), " dimensions");
        const int T = static_cast<int>(tokens.shape(1));
        return copy(h.d->step_many(tokens.data(), T), {h.d->batch(), T, h.V});
      }, py::arg("tokens"), "(B, T) new tokens per sequence -> logits (B, T, V)")
      .def("truncate", [](DecoderHandle& h, int pos) { h.d->truncate(pos); }, py::arg("pos"),
           "forget positions >= pos (the next step decodes at pos again)")
      .def("reset", [](DecoderHandle& h) { h.d->reset(); })
      .def_property_readonly("pos", [](const DecoderHandle& h) { return h.d->pos(); })
      .def_property_readonly("cache_bytes", [](const DecoderHandle& h) { return h.d->cache().bytes(); });
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<ModelHandle<float>> model(m, "Model", "The DeepSeek-style transformer in float32 (tinyds/model/).");
  bind_forward(model);
  bind_backward(model);
  bind_float_model(model);
  py::class_<ModelHandle<double>> model64(m, "Model64", "The same transformer in float64, for gradient checks.");
  bind_forward(model64);
  bind_backward(model64);
  bind_decoder(m);

  m.def("kv_cache_bytes_per_token_per_layer", [](const std::string& kind, int H, int n_kv_head, int D, int L, int R) {
    KvCacheDims d;
    d.H = H; d.n_kv_head = n_kv_head; d.D = D; d.L = L; d.R = R;
    return kv_cache_bytes_per_token_per_layer(kv_cache_kind_of(parse_attention_kind(kind)), d);
  }, py::arg("kind"), py::arg("H") = 1, py::arg("n_kv_head") = 1, py::arg("D") = 1, py::arg("L") = 0, py::arg("R") = 0,
     "fp32 bytes one token costs per layer in a kv-cache: mha 8HD, gqa 8 n_kv D, mqa 8D, mla 4(L+R)");
}

}  // namespace tinyds::python
