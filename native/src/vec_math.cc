// GELU (tanh approximation) and softmax rows on 8 floats at a time, with glibc's vector expf (libmvec, AVX2
// variant).
//
// gelu(x) = 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x + 0.044715 x^3), which equals x * sigmoid(2u) =
// x / (1 + exp(-2u)): one exp and one division per element, exact at both tails (exp overflowing to inf gives
// -0 for very negative x, exp(-2u) -> 0 gives x). oneDNN 2.6.3's AVX2 gelu_tanh builds tanh from table lookups
// (gathers), which ran at 0.16 G elements/s per thread on the development machine (Zen 3); this runs about 5x
// that (README, native section).
#include "vec_math.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#include <immintrin.h>
#define SIGLIP2_VEC_MATH 1
// glibc's AVX2 expf on 8 lanes (the x86_64 vector function ABI, libmvec.so.1)
extern "C" __m256 _ZGVdN8v_expf(__m256);
#endif

namespace siglip2 {

namespace {

constexpr float kC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kA = 0.044715f;

inline float gelu_one(float x) {
  const float u2 = 2.f * kC * (x + kA * x * x * x);
  return x / (1.f + std::exp(-u2));
}

// gelu'(x) = s + x s (1 - s) du2/dx with s = sigmoid(2u). Past |x| = 10 the second term is below 1e-35 (s (1 - s)
// < e^-87) while x du2/dx would overflow for huge x (inf * 0 = NaN): it is computed on x clamped to [-10, 10].
constexpr float kClamp = 10.f;

inline float gelu_grad_one(float x) {
  const float u2 = 2.f * kC * (x + kA * x * x * x);
  const float s = 1.f / (1.f + std::exp(-u2));
  const float xc = std::fmin(std::fmax(x, -kClamp), kClamp);
  return s + xc * s * (1.f - s) * 2.f * kC * (1.f + 3.f * kA * xc * xc);
}

#ifdef SIGLIP2_VEC_MATH

__attribute__((target("avx2,fma"))) inline __m256 neg_two_u(__m256 x) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(kA), x2), x, x);  // x + a x^3
  return _mm256_mul_ps(_mm256_set1_ps(-2.f * kC), inner);
}

__attribute__((target("avx2,fma"))) void forward_avx2(const float* x, float* y, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 e = _ZGVdN8v_expf(neg_two_u(v));
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
  }
  for (; i < n; i++) y[i] = gelu_one(x[i]);
}

__attribute__((target("avx2,fma"))) void backward_avx2(const float* x, const float* dy, float* dx, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 two_c = _mm256_set1_ps(2.f * kC);
  const __m256 three_a = _mm256_set1_ps(3.f * kA);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, _ZGVdN8v_expf(neg_two_u(v))));
    // max/min return their second operand for a NaN x: the clamp must keep NaN, so x goes second
    const __m256 xc = _mm256_max_ps(_mm256_set1_ps(-kClamp), _mm256_min_ps(_mm256_set1_ps(kClamp), v));
    // du2/dx = 2c (1 + 3a x^2)
    const __m256 du = _mm256_mul_ps(two_c, _mm256_fmadd_ps(_mm256_mul_ps(three_a, xc), xc, one));
    // s + x s (1 - s) du
    const __m256 g = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(xc, s), _mm256_sub_ps(one, s)), du, s);
    _mm256_storeu_ps(dx + i, _mm256_mul_ps(g, _mm256_loadu_ps(dy + i)));
  }
  for (; i < n; i++) dx[i] = gelu_grad_one(x[i]) * dy[i];
}

__attribute__((target("avx2,fma"))) void softmax_avx2(float* x, int64_t n) {
  int64_t i = 0;
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float mx = *std::max_element(lanes, lanes + 8);
  for (; i < n; i++) mx = std::max(mx, x[i]);
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  _mm256_store_ps(lanes, vsum);
  float sum = 0.f;
  for (float l : lanes) sum += l;
  for (; i < n; i++) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.f / sum;
  const __m256 vinv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
  for (; i < n; i++) x[i] *= inv;
}

#endif

void softmax_one(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) mx = std::max(mx, x[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < n; i++) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; i++) x[i] *= 1.f / sum;
}

}  // namespace

void softmax_vec_row(float* x, int64_t n) {
#ifdef SIGLIP2_VEC_MATH
  if (vec_math_available()) return softmax_avx2(x, n);
#endif
  softmax_one(x, n);
}

bool vec_math_available() {
#ifdef SIGLIP2_VEC_MATH
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

void gelu_vec_forward(const float* x, float* y, int64_t n) {
#ifdef SIGLIP2_VEC_MATH
  if (vec_math_available()) return forward_avx2(x, y, n);
#endif
  for (int64_t i = 0; i < n; i++) y[i] = gelu_one(x[i]);
}

void gelu_vec_backward(const float* x, const float* dy, float* dx, int64_t n) {
#ifdef SIGLIP2_VEC_MATH
  if (vec_math_available()) return backward_avx2(x, dy, dx, n);
#endif
  for (int64_t i = 0; i < n; i++) dx[i] = gelu_grad_one(x[i]) * dy[i];
}

}  // namespace siglip2
