// GELU (tanh approximation) on one thread over a contiguous run, vectorised with glibc's libmvec expf where the
// CPU has AVX2 + FMA (vec_math.cc). Callers split the work over threads themselves.
#pragma once
#include <cstdint>

namespace siglip2 {

/** Whether the vectorised path runs here (x86-64 Linux, AVX2 + FMA); otherwise the callers use oneDNN's. */
bool vec_math_available();
/** y = gelu_tanh(x); y may alias x. */
void gelu_vec_forward(const float* x, float* y, int64_t n);
/** dx = gelu_tanh'(x) dy; dx may alias dy. */
void gelu_vec_backward(const float* x, const float* dy, float* dx, int64_t n);
/** x = softmax(x) over n values, in place (max subtracted first). */
void softmax_vec_row(float* x, int64_t n);

}  // namespace siglip2
