// LayerNorm over the last axis (biased variance, as torch.nn.LayerNorm) and its backward pass: row reductions in
// double, rows spread over OpenMP threads; dgamma/dbeta as per-thread column sums.
#include <omp.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "args.h"
#include "kernels.h"
#include "ops.h"

namespace siglip2 {

namespace {

// The sums are in double, over SIMD lanes (`omp simd`: GCC reorders a reduction only when told), so the row
// statistics keep their precision at vector speed: a [196,768] forward pass went from 330 to about 150 microseconds
// on 2 threads, [1568,768] from 1,800 to 700.
inline void row_stats(const float* x, int64_t cols, double eps, double* mean, double* rstd) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < cols; j++) s += x[j];
  const double mu = s / static_cast<double>(cols);
  double v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t j = 0; j < cols; j++) {
    const double d = x[j] - mu;
    v += d * d;
  }
  *mean = mu;
  *rstd = 1.0 / std::sqrt(v / static_cast<double>(cols) + eps);
}

void set_ln_shapes(Args& args, int64_t rows, int64_t cols) {
  std::ostringstream s;
  s << "x [" << rows << "," << cols << "], gamma/beta [" << cols << "]";
  args.set_shapes(s.str());
}

// layerNorm(x, gamma, beta, out, rows, cols, epsilon)
napi_value ln_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "LayerNorm", 7);
  const int64_t rows = args.int_at(4, "rows", 1), cols = args.int_at(5, "cols", 1);
  const double eps = args.num_at(6, "epsilon");
  set_ln_shapes(args, rows, cols);
  const float* x = args.f32_at(0, "x", rows * cols);
  const float* g = args.f32_at(1, "gamma", cols);
  const float* b = args.f32_at(2, "beta", cols);
  float* out = args.f32_at(3, "out", rows * cols);
  layer_norm_forward(x, g, b, out, rows, cols, eps);
  return undefined_value(env);
}

// layerNormBackward(x, gamma, dy, dx | null, dgamma | null, dbeta | null, rows, cols, epsilon)
//   dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma;  dgamma = sum_rows dy xhat;  dbeta = sum_rows dy
napi_value ln_bwd_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "LayerNormBackward", 9);
  const int64_t rows = args.int_at(6, "rows", 1), cols = args.int_at(7, "cols", 1);
  const double eps = args.num_at(8, "epsilon");
  set_ln_shapes(args, rows, cols);
  const float* x = args.f32_at(0, "x", rows * cols);
  const float* g = args.f32_at(1, "gamma", cols);
  const float* dy = args.f32_at(2, "dy", rows * cols);
  float* dx = args.f32_opt(3, "dx", rows * cols);
  float* dgamma = args.f32_opt(4, "dgamma", cols);
  float* dbeta = args.f32_opt(5, "dbeta", cols);
  const int threads = omp_get_max_threads();
  std::vector<double> part_g(dgamma ? static_cast<size_t>(threads * cols) : 0, 0.0);
  std::vector<double> part_b(dbeta ? static_cast<size_t>(threads * cols) : 0, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    std::vector<double> xhat(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = x + r * cols;
      const float* dyr = dy + r * cols;
      double mean, rstd;
      row_stats(xr, cols, eps, &mean, &rstd);
      double sg = 0, sgx = 0;
      for (int64_t j = 0; j < cols; j++) {
        xhat[j] = (xr[j] - mean) * rstd;
        const double gj = static_cast<double>(dyr[j]) * g[j];
        sg += gj;
        sgx += gj * xhat[j];
      }
      if (dx) {
        const double mg = sg / cols, mgx = sgx / cols;
        float* dxr = dx + r * cols;
        for (int64_t j = 0; j < cols; j++) {
          dxr[j] = static_cast<float>(rstd * (static_cast<double>(dyr[j]) * g[j] - mg - xhat[j] * mgx));
        }
      }
      if (dgamma) {
        double* pg = part_g.data() + static_cast<size_t>(t) * cols;
        for (int64_t j = 0; j < cols; j++) pg[j] += dyr[j] * xhat[j];
      }
      if (dbeta) {
        double* pb = part_b.data() + static_cast<size_t>(t) * cols;
        for (int64_t j = 0; j < cols; j++) pb[j] += dyr[j];
      }
    }
  }
  for (int64_t j = 0; j < cols; j++) {
    double sg = 0, sb = 0;
    for (int t = 0; t < threads; t++) {
      if (dgamma) sg += part_g[static_cast<size_t>(t) * cols + j];
      if (dbeta) sb += part_b[static_cast<size_t>(t) * cols + j];
    }
    if (dgamma) dgamma[j] = static_cast<float>(sg);
    if (dbeta) dbeta[j] = static_cast<float>(sb);
  }
  return undefined_value(env);
}

}  // namespace

void layer_norm_rows(const float* x, const float* g, const float* b, float* out, int64_t r0, int64_t r1, int64_t cols,
                     double eps) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    double mean, rstd;
    row_stats(xr, cols, eps, &mean, &rstd);
    const float fm = static_cast<float>(mean), fr = static_cast<float>(rstd);
    for (int64_t j = 0; j < cols; j++) o[j] = (xr[j] - fm) * fr * g[j] + b[j];
  }
}

void layer_norm_forward(const float* x, const float* g, const float* b, float* out, int64_t rows, int64_t cols,
                        double eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) layer_norm_rows(x, g, b, out, r, r + 1, cols, eps);
}

napi_value LayerNorm(napi_env env, napi_callback_info info) { return guard(env, "LayerNorm", ln_body, info); }
napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  return guard(env, "LayerNormBackward", ln_bwd_body, info);
}

}  // namespace siglip2
