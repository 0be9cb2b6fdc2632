// oneDNN eltwise and softmax primitives used by several kernels (cached per size).
#pragma once
#include <cstdint>

namespace siglip2 {
void gelu_tanh_forward(const float* x, float* y, int64_t n);
void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n);
/** Softmax over the last axis of [rows, cols]; in place when x == y. */
void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols);
/** dx = y (dy - sum(dy y)) over the last axis; dx may alias dy. */
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);
}  // namespace siglip2
