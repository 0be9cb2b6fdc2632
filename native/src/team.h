// Running several kernels inside one OpenMP parallel region: each thread takes its share of a step's tasks, and
// the team meets at a spin barrier before the next step reads what the step wrote. With passive waits (the
// default, addon.ts) every parallel region and every OpenMP barrier puts the idle thread to sleep in the kernel
// and wakes it through a futex, which on this kind of VM costs 75-134 microseconds a time (README, native section);
// a barrier that spins for a short while keeps both cores busy between the steps of one encoder layer instead.
#pragma once
#include <atomic>
#include <cstdint>

namespace siglip2 {

/**
 * A barrier for the threads of one parallel region. Each wait spins (the CPU's pause hint) for about a third of a
 * millisecond and then yields the core until the last thread arrives, so a team sharing cores with other work
 * does not burn them for long. Reusable: the waits alternate through a generation counter.
 */
class SpinBarrier {
 public:
  /** Blocks until `team` threads (all of the region's) have called wait for this generation. */
  void wait(int team);

 private:
  std::atomic<int> arrived_{0};
  std::atomic<uint32_t> generation_{0};
};

/** Thread `tid` of `team`'s contiguous share [*lo, *hi) of n items (as `omp for schedule(static)` splits them). */
void static_share(int64_t n, int tid, int team, int64_t* lo, int64_t* hi);

}  // namespace siglip2
