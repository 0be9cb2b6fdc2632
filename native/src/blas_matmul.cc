#include "blas_matmul.h"

#include <cblas.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "args.h"
#include "vec_math.h"
#include "ops.h"

namespace siglip2 {

using blas::Layout;
using blas::Shape;
using blas::Tile;
using blas::Tiling;

namespace {

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

bool shape_of(const MatmulProblem& p, Shape* s) {
  const size_t r = p.dst_dims.size();
  if (r < 2 || r > 4 || p.src_dims.size() != r || p.wei_dims.size() != r) return false;
  if (p.src_strides.size() != r || p.wei_strides.size() != r || p.dst_strides.size() != r) return false;
  s->m = p.src_dims[r - 2];
  s->k = p.src_dims[r - 1];
  s->n = p.wei_dims[r - 1];
  if (p.dst_strides[r - 1] != 1 || p.dst_strides[r - 2] < s->n) return false;
  s->ldc = p.dst_strides[r - 2];
  for (size_t i = 0; i + 2 < r; i++) {
    const size_t at = i + 4 - r;  // batch dims fill the last of the two slots
    s->batch_dims[at] = p.dst_dims[i];
    s->a_batch[at] = p.src_dims[i] == 1 ? 0 : p.src_strides[i];
    s->b_batch[at] = p.wei_dims[i] == 1 ? 0 : p.wei_strides[i];
    s->c_batch[at] = p.dst_strides[i];
  }
  return layout_of(s->m, s->k, p.src_strides[r - 2], p.src_strides[r - 1], &s->a) &&
         layout_of(s->k, s->n, p.wei_strides[r - 2], p.wei_strides[r - 1], &s->b);
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

constexpr double kSerialFlops = 2e6;

Tiling tiling(int64_t batch, int64_t m, int64_t n, int64_t k) {
  Tiling t;
  t.batch = batch;
  t.m = m;
  t.n = n;
  t.m_step = m;
  t.n_step = n;
  const int max_threads = omp_get_max_threads();
  const double flops = 2.0 * static_cast<double>(batch) * static_cast<double>(m) * static_cast<double>(n) *
                       static_cast<double>(k);
  if (max_threads <= 1 || flops < kSerialFlops) return t;
  t.threads = max_threads;
  if (batch >= max_threads) return t;
  const int64_t parts = (max_threads + batch - 1) / batch;
  constexpr int64_t kLine = 16;  // floats per 64-byte cache line
  if (n >= parts * 4 * kLine) {
    t.n_step = ((n + parts - 1) / parts + kLine - 1) / kLine * kLine;
    t.n_blocks = (n + t.n_step - 1) / t.n_step;
  } else {
    t.m_step = (m + parts - 1) / parts;
    t.m_blocks = (m + t.m_step - 1) / t.m_step;
  }
  return t;
}

/** The problem as OpenBLAS runs it, or false where it cannot: bias, activation and residual are applied over a
 * dense output, the residual only with the linear activation. */
bool supported_shape(const MatmulProblem& p, Shape* s) {
  if (!shape_of(p, s)) return false;
  const bool epilogue = p.bias || p.act != Act::kLinear || p.residual;
  if (epilogue && p.dst_strides != dense_strides(p.dst_dims)) return false;
  return !(p.residual && p.act != Act::kLinear);
}

}  // namespace

bool blas_supports(const MatmulProblem& p) {
  Shape s;
  return supported_shape(p, &s);
}

BlasPlan::BlasPlan(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
                   const float* residual)
    : src_(src), wei_(wei), bias_(bias), residual_(residual), dst_(dst), scale_(p.scale), alpha_(p.alpha),
      act_(p.act) {
  if (!supported_shape(p, &s_)) throw JsError("matmul: layout not supported by OpenBLAS");
  if (p.residual && residual == nullptr) throw JsError("matmul: residual missing");
  init_ = bias != nullptr || p.residual;
  t_ = tiling(s_.batch(), s_.m, s_.n, s_.k);
  gelu_in_tile_ = p.act == Act::kGeluTanh && vec_math_available();
}

void BlasPlan::run_task(int64_t task) const {
  const Shape& s = s_;
  const Tile tile = t_.tile(task);
  const int64_t b0 = tile.b / s.batch_dims[1], b1 = tile.b % s.batch_dims[1];
  const float* a = src_ + b0 * s.a_batch[0] + b1 * s.a_batch[1] + tile.m0 * (s.a.trans == CblasNoTrans ? s.a.ld : 1);
  const float* w = wei_ + b0 * s.b_batch[0] + b1 * s.b_batch[1] + tile.n0 * (s.b.trans == CblasNoTrans ? 1 : s.b.ld);
  float* c = dst_ + b0 * s.c_batch[0] + b1 * s.c_batch[1] + tile.m0 * s.ldc + tile.n0;
  if (init_) {  // dense output (blas_supports): the residual's element offsets are the output's
    for (int64_t i = 0; i < tile.rows; i++) {
      float* row = c + i * s.ldc;
      const float* res = residual_ == nullptr ? nullptr : residual_ + (row - dst_);
      if (res != nullptr && bias_ != nullptr) {
        for (int64_t j = 0; j < tile.cols; j++) row[j] = res[j] + bias_[tile.n0 + j];
      } else if (res != nullptr) {
        if (res != row) std::memcpy(row, res, static_cast<size_t>(tile.cols) * sizeof(float));
      } else {
        std::memcpy(row, bias_ + tile.n0, static_cast<size_t>(tile.cols) * sizeof(float));
      }
    }
  }
  cblas_sgemm(CblasRowMajor, s.a.trans, s.b.trans, static_cast<int>(tile.rows), static_cast<int>(tile.cols),
              static_cast<int>(s.k), scale_, a, static_cast<int>(s.a.ld), w, static_cast<int>(s.b.ld),
              init_ ? 1.f : 0.f, c, static_cast<int>(s.ldc));
  if (gelu_in_tile_) {  // while the tile is still in this core's cache
    for (int64_t i = 0; i < tile.rows; i++) gelu_vec_forward(c + i * s.ldc, c + i * s.ldc, tile.cols);
  }
}

void BlasPlan::finish() const {
  if (act_left()) apply_act(act_, alpha_, dst_, s_.batch() * s_.m * s_.n);
}

void run_blas(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
              const float* residual) {
  const BlasPlan plan(p, src, wei, bias, dst, residual);
#pragma omp parallel num_threads(plan.threads()) if (plan.threads() > 1)
  {
    // the team may be smaller than asked (OMP_DYNAMIC, thread limits): stride by the team actually running
    const int tid = omp_get_thread_num(), team = omp_get_num_threads();
    for (int64_t task = tid; task < plan.tasks(); task += team) plan.run_task(task);
  }
  plan.finish();
}

}  // namespace siglip2
