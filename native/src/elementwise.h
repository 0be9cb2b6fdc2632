// Shared helpers of the elementwise, transpose, reduction and optimizer kernels (transpose.cc, binary.cc,
// reduce.cc, adamw.cc).
#pragma once
#include <cstdint>
#include <string>

#include "args.h"

namespace siglip2 {

/** Below this many elements a kernel runs on one thread (waking OpenMP threads costs more). */
constexpr int64_t kParallelMin = 1 << 15;

/** Fails when the byte ranges [a, a+na) and [b, b+nb) overlap (an output must not alias an input). */
inline void check_no_alias(const Args& args, const void* a, int64_t na, const void* b, int64_t nb,
                           const char* what) {
  auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  if (pa < pb + static_cast<uintptr_t>(nb) && pb < pa + static_cast<uintptr_t>(na)) {
    args.fail(std::string(what) + " share memory (the output must be a separate array)");
  }
}

}  // namespace siglip2
