// GELU (tanh approximation) forward and backward: the libmvec path of vec_math.cc over the threads where the CPU
// has AVX2 + FMA, else oneDNN's eltwise primitives.
#include <algorithm>
#include <map>
#include <sstream>

#include "args.h"
#include "dnnl_compat.h"
#include "dnnl_context.h"
#include "elementwise.h"
#include "vec_math.h"
#include "kernels.h"
#include "ops.h"

namespace siglip2 {

using dnnl::memory;

namespace {

struct GeluPlans {
  dnnl::eltwise_forward::primitive_desc fwd_pd;
  dnnl::eltwise_forward fwd;
  dnnl::eltwise_backward bwd;
  memory::desc md;
};

GeluPlans& gelu_plans(int64_t n) {
  static auto& cache = *new std::map<int64_t, GeluPlans>();  // never destroyed (see dnnl_context.cc)
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  if (cache.size() > 256) cache.clear();
  GeluPlans p;
  p.md = memory::desc({n}, memory::data_type::f32, memory::format_tag::a);
  p.fwd_pd = dnnl_compat::eltwise_fwd_pd(cpu_engine(), dnnl::algorithm::eltwise_gelu_tanh, p.md);
  p.fwd = dnnl::eltwise_forward(p.fwd_pd);
  p.bwd = dnnl::eltwise_backward(
      dnnl_compat::eltwise_bwd_pd(cpu_engine(), dnnl::algorithm::eltwise_gelu_tanh, p.md, p.fwd_pd));
  return cache.emplace(n, p).first->second;
}

std::string n_shape(int64_t n) {
  std::ostringstream s;
  s << "x [" << n << "]";
  return s.str();
}

// geluTanh(x, out, n)
napi_value gelu_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "GeluTanh", 3);
  const int64_t n = args.int_at(2, "size", 1);
  args.set_shapes(n_shape(n));
  const float* x = args.f32_at(0, "x", n);
  float* y = args.f32_at(1, "out", n);
  gelu_tanh_forward(x, y, n);
  return undefined_value(env);
}

// geluTanhBackward(x, dy, dx, n)
napi_value gelu_bwd_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "GeluTanhBackward", 4);
  const int64_t n = args.int_at(3, "size", 1);
  args.set_shapes(n_shape(n));
  const float* x = args.f32_at(0, "x", n);
  const float* dy = args.f32_at(1, "dy", n);
  float* dx = args.f32_at(2, "dx", n);
  gelu_tanh_backward(x, dy, dx, n);
  return undefined_value(env);
}

/** Runs f(begin, count) over [0, n) in chunks split across the OpenMP threads (one thread below kParallelMin). */
template <typename F>
void over_chunks(int64_t n, F f) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t begin = c * kChunk;
    f(begin, std::min(kChunk, n - begin));
  }
}

}  // namespace

void gelu_tanh_forward(const float* x, float* y, int64_t n) {
  if (vec_math_available()) {
    over_chunks(n, [&](int64_t b, int64_t c) { gelu_vec_forward(x + b, y + b, c); });
    return;
  }
  GeluPlans& p = gelu_plans(n);
  auto& eng = cpu_engine();
  memory xm(p.md, eng, const_cast<float*>(x)), ym(p.md, eng, y);
  p.fwd.execute(cpu_stream(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}});
  cpu_stream().wait();
}

void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n) {
  if (vec_math_available()) {
    over_chunks(n, [&](int64_t b, int64_t c) { gelu_vec_backward(x + b, dy + b, dx + b, c); });
    return;
  }
  GeluPlans& p = gelu_plans(n);
  auto& eng = cpu_engine();
  memory xm(p.md, eng, const_cast<float*>(x)), dym(p.md, eng, const_cast<float*>(dy)), dxm(p.md, eng, dx);
  p.bwd.execute(cpu_stream(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_SRC, dxm}});
  cpu_stream().wait();
}

napi_value GeluTanh(napi_env env, napi_callback_info info) { return guard(env, "GeluTanh", gelu_body, info); }
napi_value GeluTanhBackward(napi_env env, napi_callback_info info) {
  return guard(env, "GeluTanhBackward", gelu_bwd_body, info);
}

}  // namespace siglip2
