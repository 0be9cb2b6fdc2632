// Kernel bodies shared between the Node-API entry points: oneDNN eltwise and softmax primitives (cached per size),
// the LayerNorm forward, the attention forward, and the scratch buffers kernels keep between calls (scratch.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace siglip2 {
void gelu_tanh_forward(const float* x, float* y, int64_t n);
void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n);
/** Softmax over the last axis of [rows, cols]; in place when x == y. */
void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols);
/** dx = y (dy - sum(dy y)) over the last axis; dx may alias dy. */
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);
/** A scratch buffer of at least `floats` elements, kept between calls (its contents are stale). */
float* scratch(std::vector<float>& buf, size_t floats);
/** Frees `buf` when it holds more than `keep_bytes`. */
void keep_at_most(std::vector<float>& buf, size_t keep_bytes);

/** LayerNorm over the last axis of [rows, cols] (biased variance, as torch.nn.LayerNorm); out may not alias x. */
void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* out, int64_t rows, int64_t cols,
                        double eps);
/** Rows [r0, r1) of layer_norm_forward, on the calling thread. */
void layer_norm_rows(const float* x, const float* gamma, const float* beta, float* out, int64_t r0, int64_t r1,
                     int64_t cols, double eps);

/** The sizes of one attention call: q [b, nq, h*d], k and v [b, nk, h*d]. */
struct AttentionDims {
  int64_t b, nq, nk, h, d;
  int64_t dim() const { return h * d; }
};
/** out = softmax(q k^T * scale + mask) v over every head, out [b, nq, h*d]; mask: additive [b, nk] or null. */
void attention_forward(const AttentionDims& s, const float* q, const float* k, const float* v, const float* mask,
                       float scale, float* out);

/**
 * attention_forward's per-head path as tasks, one per (image, head), for a caller inside a parallel region of its
 * own (encoder_layer.cc); attention_forward takes the same path, in a region of its own, where possible().
 * Construct it on the calling thread before the region (it sizes each thread's scores); it trims them when it goes.
 */
class PerHeadAttention {
 public:
  /** Whether attention_forward runs these sizes per head (AVX2 + FMA, OpenBLAS allowed, the scores fit). */
  static bool possible(const AttentionDims& s);
  PerHeadAttention(const AttentionDims& s, const float* q, const float* k, const float* v, const float* mask,
                   float scale, float* out);
  ~PerHeadAttention();
  PerHeadAttention(const PerHeadAttention&) = delete;
  PerHeadAttention& operator=(const PerHeadAttention&) = delete;
  int64_t tasks() const { return s_.b * s_.h; }
  /** One (image, head): its scores in the scratch of OpenMP thread `thread`, softmax, times v. */
  void run_task(int64_t task, int thread) const;

 private:
  AttentionDims s_;
  const float *q_, *k_, *v_, *mask_;
  float scale_;
  float* out_;
};
}  // namespace siglip2
