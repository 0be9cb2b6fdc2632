// Sum and Mean of float32 tensors over one contiguous block of axes: x viewed as [outer, mid, inner] is reduced
// over mid (the last axes: inner 1; the leading axes, as bias gradients do: outer 1). Accumulates in double, as
// the cpu backend's JavaScript does; Mean divides each element first, as the cpu kernel does (sum of x / n).
#include <algorithm>
#include <sstream>
#include <vector>

#include "args.h"
#include "elementwise.h"
#include "kernels.h"

namespace siglip2 {

namespace {

constexpr int64_t kChunk = 256;

void reduce_sum(const float* x, float* y, int64_t outer, int64_t mid, int64_t inner, float divisor) {
  const bool par = outer * mid * inner >= kParallelMin;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (par)
    for (int64_t o = 0; o < outer; o++) {
      const float* r = x + o * mid;
      double s = 0;
      if (divisor == 1.f) {
        for (int64_t k = 0; k < mid; k++) s += r[k];
      } else {
        for (int64_t k = 0; k < mid; k++) s += r[k] / divisor;
      }
      y[o] = static_cast<float>(s);
    }
    return;
  }
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t job = 0; job < outer * chunks; job++) {
    const int64_t o = job / chunks, j0 = (job % chunks) * kChunk, n = std::min(kChunk, inner - j0);
    double acc[kChunk] = {0};
    for (int64_t k = 0; k < mid; k++) {
      const float* r = x + (o * mid + k) * inner + j0;
      if (divisor == 1.f) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) acc[j] += r[j];
      } else {
        for (int64_t j = 0; j < n; j++) acc[j] += r[j] / divisor;
      }
    }
    float* out = y + o * inner + j0;
    for (int64_t j = 0; j < n; j++) out[j] = static_cast<float>(acc[j]);
  }
}

// reduceSum(x, out, outer, mid, inner, mean)
napi_value reduce_body(napi_env env, napi_callback_info info) {
  Args probe(env, info, "Sum", 6);
  const bool mean = probe.bool_at(5, "mean");
  Args args(env, info, mean ? "Mean" : "Sum", 6);
  const int64_t outer = args.int_at(2, "outer", 1), mid = args.int_at(3, "mid", 1), inner = args.int_at(4, "inner", 1);
  std::ostringstream s;
  s << "x [" << outer << "," << mid << "," << inner << "] reduced over axis 1";
  args.set_shapes(s.str());
  const float* x = args.f32_at(0, "x", outer * mid * inner);
  float* y = args.f32_at(1, "out", outer * inner);
  check_no_alias(args, x, outer * mid * inner * 4, y, outer * inner * 4, "x and out");
  reduce_sum(x, y, outer, mid, inner, mean ? static_cast<float>(mid) : 1.f);
  return undefined_value(env);
}

}  // namespace

napi_value ReduceSum(napi_env env, napi_callback_info info) { return guard(env, "Sum", reduce_body, info); }

}  // namespace siglip2
