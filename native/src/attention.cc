// The attention of one layer over every head at once: softmax(q k^T * scale + mask) v and its backward pass.
// q [B, Nq, H*d], k and v [B, Nk, H*d] are read in place (heads by strides, no transposes); the output is written
// as [B, Nq, H*d]. Forward: each (image, head) on one thread from scores to output (OpenBLAS products, the softmax
// rows of vec_math.cc), its probabilities in that thread's cache. Without AVX2 + FMA, under
// SIGLIP2_NATIVE_GEMM=onednn and in the backward pass, the products are matmuls over [B, H] batches
// (gemm_choice.cc) and the softmax oneDNN's, threads throughout.
#include <cblas.h>
#include <omp.h>

#include <sstream>
#include <vector>

#include "args.h"
#include "dnnl_context.h"
#include "kernels.h"
#include "ops.h"
#include "vec_math.h"

namespace siglip2 {

namespace {

using Dims = AttentionDims;

/** [B, H, N, d] view of a [B, N, H*d] tensor. */
std::vector<int64_t> heads_strides(const Dims& s, int64_t n) { return {n * s.dim(), s.d, s.dim(), 1}; }
/** [B, H, d, N] view (transposed) of a [B, N, H*d] tensor. */
std::vector<int64_t> heads_t_strides(const Dims& s, int64_t n) { return {n * s.dim(), s.d, 1, s.dim()}; }
std::vector<int64_t> probs_strides(const Dims& s) { return {s.h * s.nq * s.nk, s.nq * s.nk, s.nk, 1}; }
std::vector<int64_t> probs_t_strides(const Dims& s) { return {s.h * s.nq * s.nk, s.nq * s.nk, 1, s.nk}; }

MatmulProblem problem(std::vector<int64_t> sd, std::vector<int64_t> ss, std::vector<int64_t> wd,
                      std::vector<int64_t> ws, std::vector<int64_t> dd, std::vector<int64_t> ds, float scale) {
  MatmulProblem p;
  p.src_dims = std::move(sd);
  p.src_strides = std::move(ss);
  p.wei_dims = std::move(wd);
  p.wei_strides = std::move(ws);
  p.dst_dims = std::move(dd);
  p.dst_strides = std::move(ds);
  p.scale = scale;
  return p;
}

/** probs = softmax(q k^T * scale + mask), [B, H, Nq, Nk]. */
void attention_probs(const Dims& s, const float* q, const float* k, const float* mask, float scale,
                     float* probs) {
  run_matmul(problem({s.b, s.h, s.nq, s.d}, heads_strides(s, s.nq), {s.b, s.h, s.d, s.nk}, heads_t_strides(s, s.nk),
                     {s.b, s.h, s.nq, s.nk}, probs_strides(s), scale),
             q, k, nullptr, probs);
  if (mask != nullptr) {
    const int64_t rows = s.b * s.h * s.nq;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* m = mask + (r / (s.h * s.nq)) * s.nk;
      float* p = probs + r * s.nk;
      for (int64_t j = 0; j < s.nk; j++) p[j] += m[j];
    }
  }
  softmax_forward(probs, probs, s.b * s.h * s.nq, s.nk);
}

/** Largest Nq x Nk one thread holds for the per-head forward (64 MiB); larger runs the batched path. */
constexpr int64_t kPerHeadMaxFloats = int64_t{16} << 20;

/**
 * Scratch for the [B, H, Nq, Nk] probabilities, kept between calls (up to kKeepBytes) so that each layer does not
 * zero and fault in fresh pages: so400m's 16 heads x 256 x 256 are 4 MiB per image. Every element is written before
 * it is read. Kernels run on the JS thread, one at a time.
 */
std::vector<float> probs_scratch, dprobs_scratch;
constexpr size_t kKeepBytes = size_t{64} << 20;
/**
 * Each OpenMP thread's per-head scores, by thread number (resized by that thread, so its pages are first touched
 * on its core), kept between calls up to kPerThreadKeepBytes (4 MiB: a NaFlex image of 1,024 patches), so that one
 * long sequence does not hold up to 64 MiB per thread for good.
 */
std::vector<std::vector<float>> per_head_scratch;
constexpr size_t kPerThreadKeepBytes = size_t{4} << 20;

/** Frees the scratch buffers larger than worth keeping. */
void trim_scratch() {
  keep_at_most(probs_scratch, kKeepBytes);
  keep_at_most(dprobs_scratch, kKeepBytes);
  for (std::vector<float>& buf : per_head_scratch) keep_at_most(buf, kPerThreadKeepBytes);
}

/** Trims the scratch buffers when a call returns (or throws). */
struct TrimOnExit {
  ~TrimOnExit() { trim_scratch(); }
};

/**
 * out = softmax(q k^T * scale + mask) v with each (image, head) pair on one thread: its scores, softmax rows and
 * product with v stay in that core's cache, in one parallel region for the layer (the batched path runs three,
 * the probabilities of every head going through memory between them).
 */
void attention_per_head(const Dims& s, const float* q, const float* k, const float* v, const float* mask,
                        float scale, float* out) {
  const PerHeadAttention heads(s, q, k, v, mask, scale, out);
#pragma omp parallel
  {
    const int thread = omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < heads.tasks(); t++) heads.run_task(t, thread);
  }
}

Dims read_dims(Args& args, size_t at) {
  Dims s{args.int_at(at, "batch", 1), args.int_at(at + 1, "queries", 1), args.int_at(at + 2, "keys", 1),
         args.int_at(at + 3, "heads", 1), args.int_at(at + 4, "headDim", 1)};
  std::ostringstream sh;
  sh << "q [" << s.b << "," << s.nq << "," << s.dim() << "], k/v [" << s.b << "," << s.nk << "," << s.dim()
     << "], " << s.h << " heads of " << s.d;
  args.set_shapes(sh.str());
  return s;
}

// attention(q, k, v, mask | null, out, batch, queries, keys, heads, headDim, scale)
napi_value attention_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "Attention", 11);
  const Dims s = read_dims(args, 5);
  const float scale = static_cast<float>(args.num_at(10, "scale"));
  const float* q = args.f32_at(0, "q", s.b * s.nq * s.dim());
  const float* k = args.f32_at(1, "k", s.b * s.nk * s.dim());
  const float* v = args.f32_at(2, "v", s.b * s.nk * s.dim());
  const float* mask = args.f32_opt(3, "mask", s.b * s.nk);
  float* out = args.f32_at(4, "out", s.b * s.nq * s.dim());
  attention_forward(s, q, k, v, mask, scale, out);
  return undefined_value(env);
}

// attentionBackward(q, k, v, mask | null, dy, dq, dk, dv, batch, queries, keys, heads, headDim, scale)
//   P = softmax(S), dV = P^T dy, dP = dy V^T, dS = P (dP - rowsum(dP P)), dQ = scale dS K, dK = scale dS^T Q
napi_value attention_bwd_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "AttentionBackward", 14);
  const Dims s = read_dims(args, 8);
  const float scale = static_cast<float>(args.num_at(13, "scale"));
  const int64_t nq_el = s.b * s.nq * s.dim(), nk_el = s.b * s.nk * s.dim();
  const float* q = args.f32_at(0, "q", nq_el);
  const float* k = args.f32_at(1, "k", nk_el);
  const float* v = args.f32_at(2, "v", nk_el);
  const float* mask = args.f32_opt(3, "mask", s.b * s.nk);
  const float* dy = args.f32_at(4, "dy", nq_el);
  float* dq = args.f32_at(5, "dq", nq_el);
  float* dk = args.f32_at(6, "dk", nk_el);
  float* dv = args.f32_at(7, "dv", nk_el);
  const size_t pn = static_cast<size_t>(s.b * s.h * s.nq * s.nk);
  TrimOnExit trim;
  float* probs = scratch(probs_scratch, pn);
  float* dp = scratch(dprobs_scratch, pn);
  attention_probs(s, q, k, mask, scale, probs);
  // dV = P^T dy
  run_matmul(problem({s.b, s.h, s.nk, s.nq}, probs_t_strides(s), {s.b, s.h, s.nq, s.d}, heads_strides(s, s.nq),
                     {s.b, s.h, s.nk, s.d}, heads_strides(s, s.nk), 1.f),
             probs, dy, nullptr, dv);
  // dP = dy V^T
  run_matmul(problem({s.b, s.h, s.nq, s.d}, heads_strides(s, s.nq), {s.b, s.h, s.d, s.nk}, heads_t_strides(s, s.nk),
                     {s.b, s.h, s.nq, s.nk}, probs_strides(s), 1.f),
             dy, v, nullptr, dp);
  softmax_backward(probs, dp, dp, s.b * s.h * s.nq, s.nk);
  // dQ = scale dS K
  run_matmul(problem({s.b, s.h, s.nq, s.nk}, probs_strides(s), {s.b, s.h, s.nk, s.d}, heads_strides(s, s.nk),
                     {s.b, s.h, s.nq, s.d}, heads_strides(s, s.nq), scale),
             dp, k, nullptr, dq);
  // dK = scale dS^T Q
  run_matmul(problem({s.b, s.h, s.nk, s.nq}, probs_t_strides(s), {s.b, s.h, s.nq, s.d}, heads_strides(s, s.nq),
                     {s.b, s.h, s.nk, s.d}, heads_strides(s, s.nk), scale),
             dp, q, nullptr, dk);
  return undefined_value(env);
}

}  // namespace

bool PerHeadAttention::possible(const AttentionDims& s) {
  return vec_math_available() && s.nq * s.nk <= kPerHeadMaxFloats && openblas_allowed();
}

PerHeadAttention::PerHeadAttention(const AttentionDims& s, const float* q, const float* k, const float* v,
                                   const float* mask, float scale, float* out)
    : s_(s), q_(q), k_(k), v_(v), mask_(mask), scale_(scale), out_(out) {
  // A team has at most omp_get_max_threads() threads (no nested regions: kernels run on the JS thread).
  const size_t team = static_cast<size_t>(omp_get_max_threads());
  if (per_head_scratch.size() < team) per_head_scratch.resize(team);
}

PerHeadAttention::~PerHeadAttention() { trim_scratch(); }

void PerHeadAttention::run_task(int64_t task, int thread) const {
  const Dims& s = s_;
  const int64_t dim = s.dim();
  // resized by the thread that uses it, so its pages are first touched on that thread's core
  float* p = scratch(per_head_scratch[static_cast<size_t>(thread)], static_cast<size_t>(s.nq * s.nk));
  const int64_t b = task / s.h, h = task % s.h;
  const float* qh = q_ + b * s.nq * dim + h * s.d;
  const float* kh = k_ + b * s.nk * dim + h * s.d;
  const float* vh = v_ + b * s.nk * dim + h * s.d;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(s.nq), static_cast<int>(s.nk),
              static_cast<int>(s.d), scale_, qh, static_cast<int>(dim), kh, static_cast<int>(dim), 0.f, p,
              static_cast<int>(s.nk));
  const float* m = mask_ == nullptr ? nullptr : mask_ + b * s.nk;
  for (int64_t i = 0; i < s.nq; i++) {
    float* row = p + i * s.nk;
    if (m != nullptr) {
      for (int64_t j = 0; j < s.nk; j++) row[j] += m[j];
    }
    softmax_vec_row(row, s.nk);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(s.nq), static_cast<int>(s.d),
              static_cast<int>(s.nk), 1.f, p, static_cast<int>(s.nk), vh, static_cast<int>(dim), 0.f,
              out_ + b * s.nq * dim + h * s.d, static_cast<int>(dim));
}

void attention_forward(const AttentionDims& s, const float* q, const float* k, const float* v, const float* mask,
                       float scale, float* out) {
  if (PerHeadAttention::possible(s)) {
    attention_per_head(s, q, k, v, mask, scale, out);
    return;
  }
  TrimOnExit trim;
  float* probs = scratch(probs_scratch, static_cast<size_t>(s.b * s.h * s.nq * s.nk));
  attention_probs(s, q, k, mask, scale, probs);
  run_matmul(problem({s.b, s.h, s.nq, s.nk}, probs_strides(s), {s.b, s.h, s.nk, s.d}, heads_strides(s, s.nk),
                     {s.b, s.h, s.nq, s.d}, heads_strides(s, s.nq), 1.f),
             probs, v, nullptr, out);
}

int64_t attention_scratch_bytes() {
  size_t floats = probs_scratch.capacity() + dprobs_scratch.capacity();
  for (const std::vector<float>& buf : per_head_scratch) floats += buf.capacity();
  return static_cast<int64_t>(floats * sizeof(float));
}

napi_value Attention(napi_env env, napi_callback_info info) {
  return guard(env, "Attention", attention_body, info);
}
napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  return guard(env, "AttentionBackward", attention_bwd_body, info);
}

}  // namespace siglip2
