// One fused AdamW step (decoupled weight decay, torch.optim.AdamW) over a parameter: new parameter and moments
// into fresh arrays (the caller's tensors are never written). Every operation is the float32 one the TF.js
// version performs, in the same order, so the result is the cpu backend's to the bit (no FMA contraction:
// -std=c++17 keeps -ffp-contract=off).
#include <cmath>
#include <sstream>

#include "args.h"
#include "elementwise.h"
#include "kernels.h"

namespace siglip2 {

namespace {

// adamw(p, g, m, v, pOut, mOut, vOut, n, lr, beta1, beta2, epsilon, bc1, bc2, decay)
napi_value adamw_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "AdamW", 15);
  const int64_t n = args.int_at(7, "size", 1);
  std::ostringstream s;
  s << "parameter of " << n << " elements";
  args.set_shapes(s.str());
  const double lr = args.num_at(8, "lr"), b1d = args.num_at(9, "beta1"), b2d = args.num_at(10, "beta2");
  const double eps = args.num_at(11, "epsilon"), bc1d = args.num_at(12, "bc1"), bc2d = args.num_at(13, "bc2");
  const double decay = args.num_at(14, "decay");
  const float* p = args.f32_at(0, "param", n);
  const float* g = args.f32_at(1, "grad", n);
  const float* m = args.f32_at(2, "m", n);
  const float* v = args.f32_at(3, "v", n);
  float* po = args.f32_at(4, "paramOut", n);
  float* mo = args.f32_at(5, "mOut", n);
  float* vo = args.f32_at(6, "vOut", n);
  const float* ins[] = {p, g, m, v};
  float* outs[] = {po, mo, vo};
  for (float* o : outs)
    for (const float* i : ins) check_no_alias(args, o, n * 4, i, n * 4, "an output and an input");
  check_no_alias(args, po, n * 4, mo, n * 4, "paramOut and mOut");
  check_no_alias(args, po, n * 4, vo, n * 4, "paramOut and vOut");
  check_no_alias(args, mo, n * 4, vo, n * 4, "mOut and vOut");
  // the scalars as TF.js holds them: float32 tensors
  const float b1 = static_cast<float>(b1d), omb1 = static_cast<float>(1 - b1d);
  const float b2 = static_cast<float>(b2d), omb2 = static_cast<float>(1 - b2d);
  const float bc1 = static_cast<float>(bc1d), bc2 = static_cast<float>(bc2d);
  const float epsf = static_cast<float>(eps), lrf = static_cast<float>(lr);
  const float keep = static_cast<float>(1 - lr * decay);
  const bool decayed = decay != 0;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float mn = m[i] * b1 + gi * omb1;
    const float vn = v[i] * b2 + (gi * gi) * omb2;
    const float update = ((mn / bc1) / (std::sqrt(vn / bc2) + epsf)) * lrf;
    const float pd = decayed ? p[i] * keep : p[i];
    mo[i] = mn;
    vo[i] = vn;
    po[i] = pd - update;
  }
  return undefined_value(env);
}

}  // namespace

napi_value AdamW(napi_env env, napi_callback_info info) { return guard(env, "AdamW", adamw_body, info); }

}  // namespace siglip2
