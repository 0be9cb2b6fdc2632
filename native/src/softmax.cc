// Softmax over the last axis on oneDNN's softmax primitives (forward and backward), cached per shape.
#include <map>
#include <sstream>
#include <utility>

#include "args.h"
#include "dnnl_compat.h"
#include "dnnl_context.h"
#include "kernels.h"
#include "ops.h"

namespace siglip2 {

using dnnl::memory;

namespace {

struct SoftmaxPlans {
  dnnl::softmax_forward fwd;
  dnnl::softmax_backward bwd;
  memory::desc md;
};

SoftmaxPlans& softmax_plans(int64_t rows, int64_t cols) {
  static auto& cache = *new std::map<std::pair<int64_t, int64_t>, SoftmaxPlans>();  // never destroyed
  auto key = std::make_pair(rows, cols);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() > 256) cache.clear();
  SoftmaxPlans p;
  p.md = memory::desc({rows, cols}, memory::data_type::f32, memory::format_tag::ab);
  const auto fpd = dnnl_compat::softmax_fwd_pd(cpu_engine(), p.md, 1);
  p.fwd = dnnl::softmax_forward(fpd);
  p.bwd = dnnl::softmax_backward(dnnl_compat::softmax_bwd_pd(cpu_engine(), p.md, 1, fpd));
  return cache.emplace(key, p).first->second;
}

// softmax(x, out, rows, cols)
napi_value softmax_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "Softmax", 4);
  const int64_t rows = args.int_at(2, "rows", 1), cols = args.int_at(3, "cols", 1);
  std::ostringstream s;
  s << "logits [" << rows << "," << cols << "]";
  args.set_shapes(s.str());
  const float* x = args.f32_at(0, "logits", rows * cols);
  float* y = args.f32_at(1, "out", rows * cols);
  softmax_forward(x, y, rows, cols);
  return undefined_value(env);
}

}  // namespace

void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols) {
  SoftmaxPlans& p = softmax_plans(rows, cols);
  auto& eng = cpu_engine();
  memory xm(p.md, eng, const_cast<float*>(x)), ym(p.md, eng, y);
  p.fwd.execute(cpu_stream(), {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}});
  cpu_stream().wait();
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols) {
  SoftmaxPlans& p = softmax_plans(rows, cols);
  auto& eng = cpu_engine();
  memory ym(p.md, eng, const_cast<float*>(y)), dym(p.md, eng, const_cast<float*>(dy)), dxm(p.md, eng, dx);
  p.bwd.execute(cpu_stream(), {{DNNL_ARG_DST, ym}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_SRC, dxm}});
  cpu_stream().wait();
}

napi_value Softmax(napi_env env, napi_callback_info info) { return guard(env, "Softmax", softmax_body, info); }

}  // namespace siglip2
