// One SigLIP encoder layer at inference in a single call (pre-LN):
//   h = x + out_proj(attention(q_proj(ln1(x)), k_proj(ln1(x)), v_proj(ln1(x)), mask))
//   out = h + fc2(gelu_tanh(fc1(ln2(h))))
// The same kernels, in the same order, as the native backend runs op by op (LayerNorm, matmuls with their bias,
// GELU-tanh or residual fused, the attention), so the numbers are the same; what it saves is the TF.js work between
// them (a tensor, a tidy scope and a kernel dispatch per op). The intermediates live in one scratch buffer kept
// between calls (up to kKeepBytes). Where every product of the layer runs on OpenBLAS (the default under 1,024
// rows on AVX2) and the attention per head, the whole layer runs in one parallel region, its threads meeting at a
// spin barrier between the steps (team.h) instead of sleeping and waking for each kernel: the same tiles, rows
// and heads, so the same bits.
#include <omp.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <sstream>
#include <vector>

#include "args.h"
#include "blas_matmul.h"
#include "dnnl_context.h"
#include "kernels.h"
#include "ops.h"
#include "team.h"

namespace siglip2 {

namespace {

std::vector<float> layer_scratch;
constexpr size_t kKeepBytes = size_t{64} << 20;
/** Calls that ran as a team (run_as_team); kernels run on the JS thread, one at a time. */
int64_t team_calls = 0;

struct TrimOnExit {
  ~TrimOnExit() { keep_at_most(layer_scratch, kKeepBytes); }
};

MatmulProblem linear_problem(int64_t m, int64_t k, int64_t n, Act act, bool residual) {
  MatmulProblem p = plain_problem(m, k, n);
  p.bias = true;
  p.act = act;
  p.residual = residual;
  return p;
}

/** out = act(x [m, k] @ w [k, n] + bias) (+ residual); returns whether `w` was copied into a packed layout. */
bool linear(const float* x, const float* w, const float* bias, float* out, int64_t m, int64_t k, int64_t n, Act act,
            uint64_t pack_key, const float* residual = nullptr) {
  return run_matmul(linear_problem(m, k, n, act, residual != nullptr), x, w, bias, out, pack_key, residual);
}

/** SIGLIP2_NATIVE_LAYER_TEAM=off: the layer's kernels each in a parallel region of their own (for comparisons). */
bool team_allowed() {
  const char* v = std::getenv("SIGLIP2_NATIVE_LAYER_TEAM");
  return v == nullptr || std::strcmp(v, "off") != 0;
}

/** The layer's tensors: its input, weights by argument position, mask and output, and the intermediates. */
struct LayerBuffers {
  const float* x;
  const float* const* w;
  const float* mask;
  float* out;
  float *normed, *q, *k, *v, *att, *h, *hidden;
};

/**
 * The layer in one parallel region when its kernels allow it (see the top of the file); returns false, having run
 * nothing, where they do not.
 */
bool run_as_team(const LayerBuffers& t, int64_t m, int64_t d, int64_t f, const AttentionDims& s, float scale,
                 double eps);

/** The argument positions of the layer's weights, in the order JavaScript passes them. */
enum Weight : size_t {
  kLn1Gamma = 1, kLn1Beta, kQ, kQBias, kK, kKBias, kV, kVBias, kO, kOBias,
  kLn2Gamma, kLn2Beta, kFc1, kFc1Bias, kFc2, kFc2Bias,
};
constexpr size_t kMaskArg = 17, kOutArg = 18, kSizeArgs = 19, kPackKeysArg = 26;
/** The products, in the order of packKeys and of the returned bits. */
constexpr size_t kProducts = 6;

// encoderLayer(x, ln1Gamma, ln1Beta, qKernel, qBias, kKernel, kBias, vKernel, vBias, oKernel, oBias, ln2Gamma,
//              ln2Beta, fc1Kernel, fc1Bias, fc2Kernel, fc2Bias, mask | null, out, batch, tokens, hidden, heads,
//              intermediate, epsilon, scale, packKeys[6]: q, k, v, out_proj, fc1, fc2)
//   -> bit i set when product i copied its weight into a packed layout
// x and out [batch, tokens, hidden]; mask: additive [batch, tokens] (0 or the float32 minimum) or null; scale: the
// attention's score scale (headDim^-0.5, computed by the caller as the op-by-op attention's is).
napi_value encoder_layer_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "EncoderLayer", 27);
  const int64_t b = args.int_at(kSizeArgs, "batch", 1);
  const int64_t n = args.int_at(kSizeArgs + 1, "tokens", 1);
  const int64_t d = args.int_at(kSizeArgs + 2, "hidden", 1);
  const int64_t heads = args.int_at(kSizeArgs + 3, "heads", 1);
  const int64_t f = args.int_at(kSizeArgs + 4, "intermediate", 1);
  const double eps = args.num_at(kSizeArgs + 5, "epsilon");
  const float scale = static_cast<float>(args.num_at(kSizeArgs + 6, "scale"));
  std::ostringstream shapes;
  shapes << "x [" << b << "," << n << "," << d << "], " << heads << " heads, intermediate " << f;
  args.set_shapes(shapes.str());
  if (d % heads != 0) args.fail("hidden is not divisible by heads");
  const std::vector<int64_t> keys = args.ints_at(kPackKeysArg, "packKeys", 0, kProducts);
  if (keys.size() != kProducts) args.fail("packKeys must have 6 entries (q, k, v, out_proj, fc1, fc2)");

  const int64_t m = b * n;
  const float* x = args.f32_at(0, "x", m * d);
  // each weight's name and element count, by argument position
  const std::pair<const char*, int64_t> shapes_of[] = {
      {"layer_norm1.gamma", d}, {"layer_norm1.beta", d}, {"q_proj.kernel", d * d}, {"q_proj.bias", d},
      {"k_proj.kernel", d * d}, {"k_proj.bias", d},      {"v_proj.kernel", d * d}, {"v_proj.bias", d},
      {"out_proj.kernel", d * d}, {"out_proj.bias", d},  {"layer_norm2.gamma", d}, {"layer_norm2.beta", d},
      {"fc1.kernel", d * f},    {"fc1.bias", f},         {"fc2.kernel", f * d},    {"fc2.bias", d},
  };
  const float* w[kFc2Bias + 1] = {};
  for (size_t i = kLn1Gamma; i <= kFc2Bias; i++) w[i] = args.f32_at(i, shapes_of[i - 1].first, shapes_of[i - 1].second);
  const float* mask = args.f32_opt(kMaskArg, "mask", b * n);
  float* out = args.f32_at(kOutArg, "out", m * d);
  if (x < out + m * d && out < x + m * d) args.fail("out overlaps x");

  TrimOnExit trim;
  const size_t md = static_cast<size_t>(m * d);
  float* normed = scratch(layer_scratch, 6 * md + static_cast<size_t>(m * f));
  float* q = normed + md;
  float* k = q + md;
  float* v = k + md;
  float* att = v + md;
  float* h = att + md;
  float* hidden = h + md;

  const AttentionDims s{b, n, n, heads, d / heads};
  const LayerBuffers t{x, w, mask, out, normed, q, k, v, att, h, hidden};
  if (run_as_team(t, m, d, f, s, scale, eps)) return js_number(env, 0);  // OpenBLAS packs nothing

  auto key = [&](size_t i) { return static_cast<uint64_t>(keys[i]); };
  int copied = 0;
  auto note = [&](size_t i, bool c) { copied |= c ? (1 << i) : 0; };
  layer_norm_forward(x, w[kLn1Gamma], w[kLn1Beta], normed, m, d, eps);
  note(0, linear(normed, w[kQ], w[kQBias], q, m, d, d, Act::kLinear, key(0)));
  note(1, linear(normed, w[kK], w[kKBias], k, m, d, d, Act::kLinear, key(1)));
  note(2, linear(normed, w[kV], w[kVBias], v, m, d, d, Act::kLinear, key(2)));
  attention_forward(s, q, k, v, mask, scale, att);
  note(3, linear(att, w[kO], w[kOBias], h, m, d, d, Act::kLinear, key(3), x));
  layer_norm_forward(h, w[kLn2Gamma], w[kLn2Beta], normed, m, d, eps);
  note(4, linear(normed, w[kFc1], w[kFc1Bias], hidden, m, d, f, Act::kGeluTanh, key(4)));
  note(5, linear(hidden, w[kFc2], w[kFc2Bias], out, m, f, d, Act::kLinear, key(5), h));
  return js_number(env, copied);
}

bool run_as_team(const LayerBuffers& t, int64_t m, int64_t d, int64_t f, const AttentionDims& s, float scale,
                 double eps) {
  if (omp_get_max_threads() < 2 || !team_allowed() || !PerHeadAttention::possible(s)) return false;
  const MatmulProblem square = linear_problem(m, d, d, Act::kLinear, false);
  const MatmulProblem residual = linear_problem(m, d, d, Act::kLinear, true);
  const MatmulProblem fc1 = linear_problem(m, d, f, Act::kGeluTanh, false);
  const MatmulProblem fc2 = linear_problem(m, f, d, Act::kLinear, true);
  for (const MatmulProblem* p : {&square, &residual, &fc1, &fc2}) {
    if (!runs_on_openblas(*p)) return false;
  }
  const float* const* w = t.w;
  // Planned on this thread: a plan that cannot run throws here, never inside the region.
  const BlasPlan qp(square, t.normed, w[kQ], w[kQBias], t.q, nullptr);
  const BlasPlan kp(square, t.normed, w[kK], w[kKBias], t.k, nullptr);
  const BlasPlan vp(square, t.normed, w[kV], w[kVBias], t.v, nullptr);
  const BlasPlan op(residual, t.att, w[kO], w[kOBias], t.h, t.x);
  const BlasPlan fc1p(fc1, t.normed, w[kFc1], w[kFc1Bias], t.hidden, nullptr);
  const BlasPlan fc2p(fc2, t.hidden, w[kFc2], w[kFc2Bias], t.out, t.h);
  for (const BlasPlan* p : {&qp, &kp, &vp, &op, &fc1p, &fc2p}) {
    if (p->act_left()) return false;  // GELU-tanh without AVX2 + FMA runs over the whole output after the tiles
  }
  const PerHeadAttention heads(s, t.q, t.k, t.v, t.mask, scale, t.att);
  SpinBarrier barrier;
#pragma omp parallel
  {
    const int tid = omp_get_thread_num(), team = omp_get_num_threads();
    auto norm_rows = [&](const float* in, const float* gamma, const float* beta) {
      int64_t lo, hi;
      static_share(m, tid, team, &lo, &hi);
      layer_norm_rows(in, gamma, beta, t.normed, lo, hi, d, eps);
    };
    // the tiles of the products, numbered across them, dealt out in turn
    auto products = [&](std::initializer_list<const BlasPlan*> plans) {
      int64_t at = 0;
      for (const BlasPlan* p : plans) {
        for (int64_t task = 0; task < p->tasks(); task++, at++) {
          if (at % team == tid) p->run_task(task);
        }
      }
    };
    norm_rows(t.x, w[kLn1Gamma], w[kLn1Beta]);
    barrier.wait(team);
    products({&qp, &kp, &vp});
    barrier.wait(team);
    for (int64_t task = tid; task < heads.tasks(); task += team) heads.run_task(task, tid);
    barrier.wait(team);
    products({&op});
    barrier.wait(team);
    norm_rows(t.h, w[kLn2Gamma], w[kLn2Beta]);
    barrier.wait(team);
    products({&fc1p});
    barrier.wait(team);
    products({&fc2p});
  }
  team_calls++;
  return true;
}

}  // namespace

int64_t encoder_layer_team_calls() { return team_calls; }

int64_t encoder_layer_scratch_bytes() { return static_cast<int64_t>(layer_scratch.capacity() * sizeof(float)); }

napi_value EncoderLayer(napi_env env, napi_callback_info info) {
  return guard(env, "EncoderLayer", encoder_layer_body, info);
}

}  // namespace siglip2
