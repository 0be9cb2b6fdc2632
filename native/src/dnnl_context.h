// One oneDNN CPU engine and stream for the process, and the matmul every kernel builds on: primitives are
// created once per problem (shapes, strides, fused post-ops) and cached; a weight operand can be kept in the
// library's pre-packed layout (format_tag::any + one reorder), cached under a key until released.
#pragma once
#include <dnnl.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace siglip2 {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

/** Activations fused into a matmul (the ones TF.js's _FusedMatMul knows, plus GELU-tanh). */
enum class Act : int { kLinear = 0, kRelu = 1, kRelu6 = 2, kElu = 3, kSigmoid = 4, kLeakyRelu = 5, kGeluTanh = 6 };

/**
 * dst = act(scale * (src x wei) (+ bias over the last axis)) (+ residual); operands of rank 2-4 with explicit
 * strides. A residual (a dense tensor of dst's shape, added last) needs act == kLinear.
 */
struct MatmulProblem {
  std::vector<int64_t> src_dims, src_strides;
  std::vector<int64_t> wei_dims, wei_strides;
  std::vector<int64_t> dst_dims, dst_strides;
  bool bias = false;
  Act act = Act::kLinear;
  float alpha = 0.f;
  float scale = 1.f;
  bool residual = false;
};

/**
 * Runs the problem on the GEMM library chosen for it (gemm_choice.cc: oneDNN or OpenBLAS, measured once per
 * problem). pack_key != 0 asks oneDNN to keep `wei` pre-packed under that key (only when its batch dims are all 1):
 * later calls with the same key reuse the packed copy without reading `wei`; where the packed layout is `wei`'s own
 * (AVX2's gemm:jit on a plain [K, N]) nothing is copied and `wei` is read in place at every call. `residual` is read
 * when p.residual. Returns whether this call copied `wei` into a packed layout (a one-time reorder).
 */
bool run_matmul(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
                uint64_t pack_key = 0, const float* residual = nullptr);

/** Whether run_matmul runs the problem on OpenBLAS (run_blas) under the setting in force: never under `auto`,
 * which chooses by timing calls. */
bool runs_on_openblas(const MatmulProblem& p);

/** False when every product stays on oneDNN: SIGLIP2_NATIVE_GEMM=onednn, or the default where oneDNN runs AVX-512
 * (kernels with their own OpenBLAS path, the attention's per-head forward, then take their oneDNN one). */
bool openblas_allowed();

/** The default setting runs products of fewer output rows than this on OpenBLAS on this CPU; 0 where it runs
 * every product on oneDNN (where oneDNN runs AVX-512; gemm_choice.cc). */
int64_t default_openblas_below_rows();

/** run_matmul on oneDNN, always. */
bool run_onednn(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
                uint64_t pack_key = 0, const float* residual = nullptr);

/** Whether pack_key would pack `wei` for this problem (batch dims of wei all 1). */
bool packable(const MatmulProblem& p, uint64_t pack_key);

/** The cache key of a problem (shapes, strides, fused ops, packing). */
std::string problem_key(const MatmulProblem& p, bool pack);

/** Frees the packed copies kept under `key`; returns how many there were. */
int release_packed(uint64_t key);
/** Bytes the attention keeps between calls: the threads' per-head scores and the batched path's probabilities. */
int64_t attention_scratch_bytes();
/** Bytes the one-call encoder layer keeps between calls for its intermediates (encoder_layer.cc). */
int64_t encoder_layer_scratch_bytes();
/** Encoder layers run in one parallel region so far (encoder_layer.cc), for tests and benchmarks. */
int64_t encoder_layer_team_calls();

/** Number of packed weights, cached primitives, and bytes held by packed weights. */
struct CacheStats {
  int64_t packed = 0, primitives = 0, packed_bytes = 0;
};
CacheStats cache_stats();
/** Drops every cached primitive and packed weight. */
void clear_caches();

/** Implementation name oneDNN chose for a problem (for reports and tests). */
std::string matmul_impl(const MatmulProblem& p);

/** [m, k] x [k, n] -> [m, n], every operand dense and row-major, nothing fused. */
MatmulProblem plain_problem(int64_t m, int64_t k, int64_t n);

/** Row-major strides of dims. */
std::vector<int64_t> dense_strides(const std::vector<int64_t>& dims);

}  // namespace siglip2
