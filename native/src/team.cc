#include "team.h"

#include <algorithm>
#include <thread>

namespace siglip2 {

namespace {

/** About 0.3 ms of pause instructions on a recent x86 core before the wait yields instead. */
constexpr int kSpins = 1 << 14;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

void SpinBarrier::wait(int team) {
  if (team <= 1) return;
  const uint32_t gen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == team) {
    // the last to arrive: reset the count before releasing the others, who may arrive at the next wait at once
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(gen + 1, std::memory_order_release);
    return;
  }
  for (int i = 0; generation_.load(std::memory_order_acquire) == gen; i++) {
    if (i < kSpins) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

void static_share(int64_t n, int tid, int team, int64_t* lo, int64_t* hi) {
  const int64_t base = n / team, extra = n % team;
  *lo = tid * base + std::min<int64_t>(tid, extra);
  *hi = *lo + base + (tid < extra ? 1 : 0);
}

}  // namespace siglip2
