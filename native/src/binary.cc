// Add, Sub, Mul and Div of float32 (Add/Sub/Mul also int32) tensors with the broadcasts the model and training
// use. The output is viewed as [outer, inner]; each operand is full ([outer, inner]), a row repeated over outer
// ([inner]), a column repeated over inner ([outer]) or a scalar. Threaded over chunks of the output.
#include <algorithm>
#include <sstream>

#include "args.h"
#include "elementwise.h"
#include "kernels.h"

namespace siglip2 {

namespace {

enum Op { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };
enum Mode { kFull = 0, kRow = 1, kCol = 2, kScalar = 3 };
const char* const kOpNames[] = {"Add", "Sub", "Multiply", "RealDiv"};
const char* const kModeNames[] = {"full", "row", "column", "scalar"};
constexpr int64_t kChunk = 8192;

template <int OP, typename T>
inline T apply(T a, T b) {
  if constexpr (std::is_same_v<T, int32_t>) {
    // wrap like JavaScript's Int32Array store (no signed-overflow UB)
    const uint32_t ua = static_cast<uint32_t>(a), ub = static_cast<uint32_t>(b);
    if constexpr (OP == kAdd) return static_cast<int32_t>(ua + ub);
    if constexpr (OP == kSub) return static_cast<int32_t>(ua - ub);
    return static_cast<int32_t>(ua * ub);
  } else {
    if constexpr (OP == kAdd) return a + b;
    if constexpr (OP == kSub) return a - b;
    if constexpr (OP == kMul) return a * b;
    return a / b;
  }
}

template <int OP, typename T, int SA, int SB>
void run_span(const T* __restrict a, const T* __restrict b, T* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) y[j] = apply<OP, T>(a[j * SA], b[j * SB]);
}

template <int OP, typename T>
void run(const T* a, const T* b, T* y, int64_t outer, int64_t inner, int ma, int mb) {
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int64_t jobs = outer * chunks;
  const int sa = (ma == kFull || ma == kRow) ? 1 : 0, sb = (mb == kFull || mb == kRow) ? 1 : 0;
#pragma omp parallel for schedule(static) if (outer * inner >= kParallelMin)
  for (int64_t job = 0; job < jobs; job++) {
    const int64_t i = job / chunks, j0 = (job % chunks) * kChunk, n = std::min(kChunk, inner - j0);
    const T* pa = a + (ma == kFull ? i * inner : ma == kCol ? i : 0) + j0 * sa;
    const T* pb = b + (mb == kFull ? i * inner : mb == kCol ? i : 0) + j0 * sb;
    T* py = y + i * inner + j0;
    if (sa && sb) run_span<OP, T, 1, 1>(pa, pb, py, n);
    else if (sa) run_span<OP, T, 1, 0>(pa, pb, py, n);
    else if (sb) run_span<OP, T, 0, 1>(pa, pb, py, n);
    else run_span<OP, T, 0, 0>(pa, pb, py, n);
  }
}

template <typename T>
void dispatch(int op, const T* a, const T* b, T* y, int64_t outer, int64_t inner, int ma, int mb) {
  switch (op) {
    case kAdd: return run<kAdd, T>(a, b, y, outer, inner, ma, mb);
    case kSub: return run<kSub, T>(a, b, y, outer, inner, ma, mb);
    case kMul: return run<kMul, T>(a, b, y, outer, inner, ma, mb);
    default:
      if constexpr (std::is_same_v<T, float>) return run<kDiv, T>(a, b, y, outer, inner, ma, mb);
  }
}

int64_t count_of(int mode, int64_t outer, int64_t inner) {
  return mode == kFull ? outer * inner : mode == kRow ? inner : mode == kCol ? outer : 1;
}

// binary(op, a, b, out, outer, inner, modeA, modeB)
napi_value binary_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "Binary", 8);
  const int64_t op = args.int_at(0, "op", 0);
  if (op > kDiv) args.fail("op must be 0 (Add), 1 (Sub), 2 (Multiply) or 3 (RealDiv)");
  Args named(env, info, kOpNames[op], 8);
  const int64_t outer = named.int_at(4, "outer", 1), inner = named.int_at(5, "inner", 1);
  const int64_t ma = named.int_at(6, "modeA", 0), mb = named.int_at(7, "modeB", 0);
  if (ma > kScalar || mb > kScalar) named.fail("modeA and modeB must be 0 (full), 1 (row), 2 (column) or 3 (scalar)");
  const int64_t na = count_of(static_cast<int>(ma), outer, inner), nb = count_of(static_cast<int>(mb), outer, inner);
  std::ostringstream s;
  s << "out [" << outer << "," << inner << "], a " << kModeNames[ma] << " of " << na << ", b " << kModeNames[mb]
    << " of " << nb;
  named.set_shapes(s.str());
  const napi_typedarray_type type = named.typed_type(1, "a");
  if (type == napi_int32_array && op == kDiv) named.fail("a must be a Float32Array (int32 division is not native)");
  if (type != napi_float32_array && type != napi_int32_array) named.fail("a must be a Float32Array or Int32Array");
  const void* a = named.typed_at(1, "a", na, type);
  const void* b = named.typed_at(2, "b", nb, type);
  void* y = named.typed_at(3, "out", outer * inner, type);
  check_no_alias(named, a, na * 4, y, outer * inner * 4, "a and out");
  check_no_alias(named, b, nb * 4, y, outer * inner * 4, "b and out");
  if (type == napi_int32_array) {
    dispatch(static_cast<int>(op), static_cast<const int32_t*>(a), static_cast<const int32_t*>(b),
             static_cast<int32_t*>(y), outer, inner, static_cast<int>(ma), static_cast<int>(mb));
  } else {
    dispatch(static_cast<int>(op), static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(y),
             outer, inner, static_cast<int>(ma), static_cast<int>(mb));
  }
  return undefined_value(env);
}

}  // namespace

napi_value Binary(napi_env env, napi_callback_info info) { return guard(env, "Binary", binary_body, info); }

}  // namespace siglip2
