// The same matmul problems on OpenBLAS cblas_sgemm, split by the addon over the OpenMP threads (batch entries,
// column or row blocks), each block one single-threaded cblas_sgemm; bias, activation and residual applied around
// it: a block of C starts as the bias rows (plus the residual), the product is accumulated into it (beta = 1),
// and GELU-tanh runs over the block while it is in cache (other activations over C afterwards).
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "dnnl_context.h"

namespace siglip2 {

/** Whether run_blas can run the problem: rank 2-4, each operand row-major or transposed, output rows at any stride
 * (dense with a bias, activation or residual). */
bool blas_supports(const MatmulProblem& p);

void run_blas(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
              const float* residual);

namespace blas {
struct Layout {
  CBLAS_TRANSPOSE trans = CblasNoTrans;
  int64_t ld = 0;
};

/** The problem as OpenBLAS sees it: up to two batch dims (each operand's batch strides, 0 where it broadcasts),
 * then a row-major or transposed m x k and k x n, and row-major output rows ldc apart. */
struct Shape {
  Layout a, b;
  int64_t m = 0, k = 0, n = 0, ldc = 0;
  int64_t batch_dims[2] = {1, 1};
  int64_t a_batch[2] = {0, 0}, b_batch[2] = {0, 0}, c_batch[2] = {0, 0};
  int64_t batch() const { return batch_dims[0] * batch_dims[1]; }
};

/** One sgemm of the partition: rows [m0, m0 + rows) and columns [n0, n0 + cols) of batch entry b. */
struct Tile {
  int64_t b, m0, rows, n0, cols;
};

/** How a problem is split over the OpenMP threads, each running OpenBLAS on one thread (its own pthread pool
 * stays asleep, so the two pools never compete for the cores): whole batch entries when there are enough of them,
 * else column blocks (whole cache lines), else row blocks; small problems run on the calling thread. */
struct Tiling {
  int threads = 1;
  int64_t batch = 1, m = 0, n = 0;
  int64_t m_blocks = 1, n_blocks = 1, m_step = 0, n_step = 0;
  int64_t tasks() const { return batch * m_blocks * n_blocks; }
  Tile tile(int64_t task) const {
    const int64_t per_batch = m_blocks * n_blocks;
    const int64_t b = task / per_batch, rest = task % per_batch;
    const int64_t mi = rest / n_blocks, ni = rest % n_blocks;
    const int64_t m0 = mi * m_step, n0 = ni * n_step;
    return {b, m0, std::min(m, m0 + m_step) - m0, n0, std::min(n, n0 + n_step) - n0};
  }
};

}  // namespace blas

/**
 * A problem run_blas can run, split into its tiles: run_blas runs the tiles in a parallel region of its own; a
 * caller already inside one (encoder_layer.cc) hands them out to its threads and runs finish() after the last.
 * Every tile is the same cblas_sgemm either way, so the results are the same bits.
 */
class BlasPlan {
 public:
  /** Throws the errors run_blas throws (a layout OpenBLAS cannot run, a residual missing). */
  BlasPlan(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
           const float* residual);
  int64_t tasks() const { return t_.tasks(); }
  /** The threads run_blas would use: 1 for a problem too small to share. */
  int threads() const { return t_.threads; }
  /** The bias and residual, the product, and GELU-tanh of one tile. */
  void run_task(int64_t task) const;
  /** Whether an activation is left over the whole output once every tile has run (all but GELU-tanh). */
  bool act_left() const { return act_ != Act::kLinear && !gelu_in_tile_; }
  /** Applies that activation (with threads of its own). */
  void finish() const;

 private:
  blas::Shape s_;
  blas::Tiling t_;
  const float *src_, *wei_, *bias_, *residual_;
  float* dst_;
  float scale_, alpha_;
  Act act_;
  bool init_, gelu_in_tile_;
};

}  // namespace siglip2
