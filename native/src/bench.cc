// Library sgemm rates measured in-process: oneDNN matmul (plain and pre-packed weights) and OpenBLAS cblas_sgemm,
// on C[m,n] = A[m,k] B[k,n] with random operands. Used by `npm run bench` for the reference rate.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "args.h"
#include "blas_matmul.h"
#include "dnnl_context.h"
#include "kernels.h"

namespace siglip2 {

namespace {

// benchSgemm(m, k, n, library: 0 oneDNN, 1 oneDNN packed, 2 OpenBLAS (its own threads), 3 OpenBLAS on one
// thread per OpenMP thread over a split of the product (as the backend runs it), reps) -> best seconds per product
napi_value bench_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "BenchSgemm", 5);
  const int64_t m = args.int_at(0, "m", 1), k = args.int_at(1, "k", 1), n = args.int_at(2, "n", 1);
  const int64_t lib = args.int_at(3, "library", 0);
  const int64_t reps = args.int_at(4, "reps", 1);
  if (lib > 3) args.fail("library must be 0 (oneDNN), 1 (oneDNN packed), 2 (OpenBLAS) or 3 (OpenBLAS in OpenMP tiles)");
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n)), c(static_cast<size_t>(m * n));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  const MatmulProblem p = plain_problem(m, k, n);
  const uint64_t key = 0xbe7c000000000000ull;
  auto once = [&]() {
    if (lib == 2) {  // OpenBLAS's own threading over the whole product, as a user of the library would call it
      openblas_set_num_threads(omp_get_max_threads());
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                  static_cast<int>(k), 1.f, a.data(), static_cast<int>(k), b.data(), static_cast<int>(n), 0.f,
                  c.data(), static_cast<int>(n));
      openblas_set_num_threads(1);
    } else if (lib == 3) {
      run_blas(p, a.data(), b.data(), nullptr, c.data(), nullptr);
    } else {
      run_onednn(p, a.data(), b.data(), nullptr, c.data(), lib == 1 ? key : 0, nullptr);
    }
  };
  once();
  double best = 1e30;
  for (int64_t r = 0; r < reps; r++) {
    auto t0 = std::chrono::steady_clock::now();
    once();
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  release_packed(key);
  napi_value out;
  napi_create_double(env, best, &out);
  return out;
}

}  // namespace

napi_value BenchSgemm(napi_env env, napi_callback_info info) {
  return guard(env, "BenchSgemm", bench_body, info);
}

}  // namespace siglip2
