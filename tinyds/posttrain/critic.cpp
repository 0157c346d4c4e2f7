// tinyds/posttrain/critic.cpp — see critic.h.
//
// Shapes: B sequences, T positions, N = B*T, C d_model. Gradients: the head's and the trunk's ACCUMULATE (+=).
#include "tinyds/posttrain/critic.h"

#include <algorithm>
#include <cmath>

#include "tinyds/core/error.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/train/safetensors.h"

namespace tinyds {

template <typename real>
Critic<real>::Critic(const ModelConfig& cfg, Role role)
    : trunk_(cfg, role),
      role_(role),
      head_(static_cast<std::size_t>(cfg.d_model) + 1, role, Category::weights) {}  // zero-filled: V = 0 at start

template <typename real>
real* Critic<real>::head_grads() {
  if (dhead_.size() == 0) dhead_.reset(head_.size(), role_, Category::grads);
  return dhead_.data();
}

template <typename real>
const real* Critic<real>::forward(const int* tokens, int B, int T) {
  if (B < 1 || T < 1) throw_error("Critic::forward: B = ", B, " and T = ", T, " must both be >= 1");
  const int C = d_model();
  const long N = static_cast<long>(B) * T;
  trunk_.forward(tokens, nullptr, B, T);
  if (values_.size() < static_cast<std::size_t>(N)) values_.reset(N, role_, Category::activations);
  B_ = B;
  T_ = T;
  const real* xL = trunk_.final_hidden();  // (N, C)
  const real* w = head_.data();            // (C)
  const real b = head_[C];
  // V[n] = x_L[n] . w_v + b_v   (accumulated in double: C terms of mixed sign)
#pragma omp parallel for schedule(static)
  for (long n = 0; n < N; n++) {
    const real* x = xL + n * C;
    double s = 0.0;
    for (int c = 0; c < C; c++) s += static_cast<double>(x[c]) * static_cast<double>(w[c]);
    values_[n] = static_cast<real>(s + static_cast<double>(b));
  }
  return values_.data();
}

template <typename real>
void Critic<real>::backward(const real* dvalues) {
  if (B_ == 0) throw_error("Critic::backward: no forward() yet");
  const int C = d_model();
  const long N = static_cast<long>(B_) * T_;
  if (dxL_.size() < static_cast<std::size_t>(N) * C) dxL_.reset(static_cast<std::size_t>(N) * C, role_, Category::activations);
  const real* xL = trunk_.final_hidden();
  const real* w = head_.data();
  real* dw = head_grads();
  // forward was: V[n] = x_L[n] . w_v + b_v
  //   dw_v += sum_n dV[n] x_L[n]      db_v += sum_n dV[n]      dx_L[n] = dV[n] w_v
  double db = 0.0;
  for (long n = 0; n < N; n++) db += static_cast<double>(dvalues[n]);
  dw[C] += static_cast<real>(db);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    double s = 0.0;
    for (long n = 0; n < N; n++) s += static_cast<double>(dvalues[n]) * static_cast<double>(xL[n * C + c]);
    dw[c] += static_cast<real>(s);
  }
  real* dx = dxL_.data();
#pragma omp parallel for schedule(static)
  for (long n = 0; n < N; n++)
    for (int c = 0; c < C; c++) dx[n * C + c] = dvalues[n] * w[c];
  trunk_.backward_from_hidden(dx);
}

template <typename real>
void Critic<real>::zero_grad() {
  trunk_.zero_grad();
  std::fill(head_grads(), head_grads() + head_.size(), real(0));
}

template class Critic<float>;
template class Critic<double>;

CriticAdamW::CriticAdamW(Critic<float>& critic, Role role)
    : critic_(critic),
      trunk_(critic.trunk().layout(), role),
      m_(critic.head_size(), role, Category::adam_m),
      v_(critic.head_size(), role, Category::adam_v) {}

void CriticAdamW::step(const AdamWSettings& s) {
  Transformer<float>& tr = critic_.trunk();
  trunk_.step(tr.params(), tr.grads(), s);  // advances t
  const int C = critic_.d_model();
  const int t = trunk_.t();
  // w_v (C) decays like every matrix; b_v (1) does not, like the norm gains (train/optimizer.h).
  adamw_update(critic_.head(), critic_.head_grads(), m_.data(), v_.data(), C, s.lr, s.beta1, s.beta2, s.eps,
               s.weight_decay, t);
  adamw_update(critic_.head() + C, critic_.head_grads() + C, m_.data() + C, v_.data() + C, 1, s.lr, s.beta1,
               s.beta2, s.eps, 0.0f, t);
}

double critic_clip_grad_norm(Critic<float>& critic, double max_norm) {
  Transformer<float>& tr = critic.trunk();
  const double nt = global_norm(tr.grads(), tr.num_params());
  const double nh = global_norm(critic.head_grads(), critic.head_size());
  const double norm = std::sqrt(nt * nt + nh * nh);
  if (max_norm > 0) {
    clip_grad_norm(tr.grads(), tr.num_params(), norm, max_norm);
    clip_grad_norm(critic.head_grads(), critic.head_size(), norm, max_norm);
  }
  return norm;
}

namespace {
// The trunk's tensors over `trunk` (its params or grads), then the head's two over `head` (C + 1).
std::vector<NamedTensor> critic_named(const Critic<float>& critic, const float* trunk, const float* head,
                                      const std::string& prefix, const std::string& name) {
  const int C = critic.d_model();
  std::vector<NamedTensor> out = layout_tensors(critic.trunk().layout(), trunk, prefix);
  out.push_back({name + ".weight", head, static_cast<std::size_t>(C)});
  out.push_back({name + ".bias", head + C, 1});
  return out;
}
}  // namespace

std::vector<NamedTensor> critic_params_named(const Critic<float>& critic, const std::string& prefix,
                                             const std::string& head) {
  return critic_named(critic, critic.trunk().params(), critic.head(), prefix, head);
}

std::vector<NamedTensor> critic_grads_named(Critic<float>& critic, const std::string& prefix, const std::string& head) {
  return critic_named(critic, critic.trunk().grads(), critic.head_grads(), prefix, head);
}

namespace {
std::string head_format(const std::string& name) {
  std::string f = "tinyds-" + name;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}
}  // namespace

void save_scalar_head(const std::string& path, const Critic<float>& critic, const std::string& name) {
  SafeTensors st;
  st.metadata["format"] = head_format(name);
  const int64_t C = critic.d_model();
  st.put_f32(name + ".weight", {C}, critic.head());
  st.put_f32(name + ".bias", {1}, critic.head() + C);
  write_safetensors(path, st);
}

void load_scalar_head(const std::string& path, Critic<float>& critic, const std::string& name) {
  const SafeTensors st = read_safetensors(path);
  const int64_t C = critic.d_model();
  const std::vector<float> w = st.get_f32(name + ".weight", {C}, path);  // errors name the file, tensor and shape
  const std::vector<float> b = st.get_f32(name + ".bias", {1}, path);
  std::copy(w.begin(), w.end(), critic.head());
  critic.head()[C] = b[0];
}

}  // namespace tinyds
