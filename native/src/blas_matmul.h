// The same matmul problems on OpenBLAS cblas_sgemm, split by the addon over the OpenMP threads (batch entries,
// column or row blocks), each block one single-threaded cblas_sgemm; bias, activation and residual applied around
// it: a block of C starts as the bias rows (plus the residual), the product is accumulated into it (beta = 1),
// and GELU-tanh runs over the block while it is in cache (other activations over C afterwards).
#pragma once
#include "dnnl_context.h"

namespace siglip2 {

/** Whether run_blas can run the problem: rank 2-4, each operand row-major or transposed, output rows at any stride
 * (dense with a bias, activation or residual). */
bool blas_supports(const MatmulProblem& p);

void run_blas(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
              const float* residual);

}  // namespace siglip2
