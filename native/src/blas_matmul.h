// The same matmul problems on OpenBLAS cblas_sgemm (one call per batch entry), with bias, activation and residual
// applied around it: C starts as the bias rows (plus the residual) and the product is accumulated into it
// (beta = 1); an activation runs over C afterwards.
#pragma once
#include "dnnl_context.h"

namespace siglip2 {

/** Whether run_blas can run the problem: rank 2 or 3, each operand row-major or transposed, dense dst. */
bool blas_supports(const MatmulProblem& p);

void run_blas(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
              const float* residual);

}  // namespace siglip2
