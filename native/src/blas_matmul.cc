#include "blas_matmul.h"

#include <cblas.h>

#include <cmath>
#include <cstring>

#include "args.h"
#include "ops.h"

namespace siglip2 {

namespace {

struct Layout {
  CBLAS_TRANSPOSE trans = CblasNoTrans;
  int64_t ld = 0;
};

/** rows x cols matrix (the last two dims) with strides (sr, sc): row-major (sc 1) or transposed (sr 1). */
bool layout_of(int64_t rows, int64_t cols, int64_t sr, int64_t sc, Layout* out) {
  if (sc == 1 && sr >= cols) {
    *out = {CblasNoTrans, sr};
    return true;
  }
  if (sr == 1 && sc >= rows) {
    *out = {CblasTrans, sc};
    return true;
  }
  return false;
}

bool layouts(const MatmulProblem& p, Layout* a, Layout* b) {
  const size_t r = p.dst_dims.size();
  if (r < 2 || r > 3 || p.src_dims.size() != r || p.wei_dims.size() != r) return false;
  if (p.dst_strides != dense_strides(p.dst_dims)) return false;
  const int64_t m = p.src_dims[r - 2], k = p.src_dims[r - 1], n = p.wei_dims[r - 1];
  return layout_of(m, k, p.src_strides[r - 2], p.src_strides[r - 1], a) &&
         layout_of(k, n, p.wei_strides[r - 2], p.wei_strides[r - 1], b);
}

void apply_act(Act act, float alpha, float* c, int64_t total) {
  switch (act) {
    case Act::kLinear:
      return;
    case Act::kGeluTanh:  // oneDNN's vectorised eltwise, in place: the formula of the fused oneDNN post-op
      gelu_tanh_forward(c, c, total);
      return;
    default:
      break;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < total; i++) {
    const float x = c[i];
    float y = x;
    switch (act) {
      case Act::kRelu:
        y = x > 0.f ? x : 0.f;
        break;
      case Act::kRelu6:
        y = std::fmin(std::fmax(x, 0.f), 6.f);
        break;
      case Act::kElu:
        y = x > 0.f ? x : std::expm1(x);
        break;
      case Act::kSigmoid:
        y = 1.f / (1.f + std::exp(-x));
        break;
      case Act::kLeakyRelu:
        y = x > 0.f ? x : alpha * x;
        break;
      default:
        break;
    }
    c[i] = y;
  }
}

}  // namespace

bool blas_supports(const MatmulProblem& p) {
  Layout a, b;
  return layouts(p, &a, &b) && !(p.residual && p.act != Act::kLinear);
}

void run_blas(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
              const float* residual) {
  Layout la, lb;
  if (!layouts(p, &la, &lb)) throw JsError("matmul: layout not supported by OpenBLAS");
  const size_t r = p.dst_dims.size();
  const int64_t m = p.src_dims[r - 2], k = p.src_dims[r - 1], n = p.wei_dims[r - 1];
  const int64_t batch = r == 3 ? p.dst_dims[0] : 1;
  const int64_t a_step = r == 3 && p.src_dims[0] != 1 ? p.src_strides[0] : 0;
  const int64_t b_step = r == 3 && p.wei_dims[0] != 1 ? p.wei_strides[0] : 0;
  const int64_t rows = batch * m;
  if (p.residual && residual == nullptr) throw JsError("matmul: residual missing");
  const bool init = bias != nullptr || p.residual;
  if (init) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; i++) {
      float* c = dst + i * n;
      if (p.residual) {
        const float* res = residual + i * n;
        if (bias != nullptr) {
          for (int64_t j = 0; j < n; j++) c[j] = res[j] + bias[j];
        } else {
          std::memcpy(c, res, static_cast<size_t>(n) * sizeof(float));
        }
      } else {
        std::memcpy(c, bias, static_cast<size_t>(n) * sizeof(float));
      }
    }
  }
  for (int64_t bi = 0; bi < batch; bi++) {
    cblas_sgemm(CblasRowMajor, la.trans, lb.trans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                p.scale, src + bi * a_step, static_cast<int>(la.ld), wei + bi * b_step, static_cast<int>(lb.ld),
                init ? 1.f : 0.f, dst + bi * m * n, static_cast<int>(n));
  }
  apply_act(p.act, p.alpha, dst, rows * n);
}

}  // namespace siglip2
