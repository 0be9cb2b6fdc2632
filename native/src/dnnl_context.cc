#include "dnnl_context.h"

#include <cstring>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "args.h"
#include "dnnl_compat.h"
#include "vec_math.h"
#include "ops.h"

namespace siglip2 {

using dnnl::memory;

// The engine, stream and caches are never destroyed: destructors of oneDNN objects running at process exit,
// after the library's own state or OpenMP is torn down, are not safe.
dnnl::engine& cpu_engine() {
  static auto* eng = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *eng;
}

dnnl::stream& cpu_stream() {
  static auto* s = new dnnl::stream(cpu_engine());
  return *s;
}

std::vector<int64_t> dense_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

MatmulProblem plain_problem(int64_t m, int64_t k, int64_t n) {
  MatmulProblem p;
  p.src_dims = {m, k};
  p.src_strides = {k, 1};
  p.wei_dims = {k, n};
  p.wei_strides = {n, 1};
  p.dst_dims = {m, n};
  p.dst_strides = {n, 1};
  return p;
}

namespace {

struct Plan {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  memory::desc src_md, wei_md, dst_md, bias_md;
  /** The scale oneDNN 3.x reads at run time (dnnl_compat::add_scale_arg); 1 when there is none. */
  float scale = 1.f;
  /** GELU-tanh runs over the output after the primitive (vec_math.cc) instead of as its post-op: oneDNN 2.6.3's
   * AVX2 gelu_tanh (table gathers) is about 4x slower. */
  bool gelu_after = false;
};

struct Packed {
  memory mem;
  memory::desc md;
  size_t bytes = 0;
  /** The library chose the weight's own layout (AVX2's gemm:jit on a plain [K, N]): nothing copied, the tensor's
   * array is read in place at every call (a copy held so400m's weights twice). */
  bool in_place = false;
};

constexpr size_t kMaxPlans = 1024;

std::unordered_map<std::string, Plan>& plans = *new std::unordered_map<std::string, Plan>();
// key -> (plan key of the layout it was packed for -> packed weights)
std::unordered_map<uint64_t, std::unordered_map<std::string, Packed>>& packed =
    *new std::unordered_map<uint64_t, std::unordered_map<std::string, Packed>>();

void put(std::ostringstream& s, const std::vector<int64_t>& v) {
  for (auto x : v) s << x << ',';
  s << ';';
}

std::string key_of(const MatmulProblem& p, bool pack) {
  std::ostringstream s;
  put(s, p.src_dims);
  put(s, p.src_strides);
  put(s, p.wei_dims);
  put(s, p.wei_strides);
  put(s, p.dst_dims);
  put(s, p.dst_strides);
  s << p.bias << ';' << static_cast<int>(p.act) << ';' << p.alpha << ';' << p.scale << ';' << p.residual << ';'
    << pack;
  return s.str();
}

dnnl::algorithm act_alg(Act a, float alpha, float* out_alpha, float* out_beta) {
  *out_alpha = 0.f;
  *out_beta = 0.f;
  switch (a) {
    case Act::kRelu:
      return dnnl::algorithm::eltwise_relu;
    case Act::kRelu6:
      *out_beta = 6.f;
      return dnnl::algorithm::eltwise_clip;
    case Act::kElu:
      *out_alpha = 1.f;
      return dnnl::algorithm::eltwise_elu;
    case Act::kSigmoid:
      return dnnl::algorithm::eltwise_logistic;
    case Act::kLeakyRelu:
      *out_alpha = alpha;
      return dnnl::algorithm::eltwise_relu;
    case Act::kGeluTanh:
      return dnnl::algorithm::eltwise_gelu_tanh;
    case Act::kLinear:
      break;
  }
  return dnnl::algorithm::undef;
}

Plan make_plan(const MatmulProblem& p, bool pack) {
  Plan plan;
  plan.src_md = memory::desc(p.src_dims, memory::data_type::f32, p.src_strides);
  plan.wei_md = pack ? memory::desc(p.wei_dims, memory::data_type::f32, memory::format_tag::any)
                     : memory::desc(p.wei_dims, memory::data_type::f32, p.wei_strides);
  plan.dst_md = memory::desc(p.dst_dims, memory::data_type::f32, p.dst_strides);
  dnnl::primitive_attr attr;
  plan.scale = p.scale;
  plan.gelu_after = p.act == Act::kGeluTanh && vec_math_available() && p.dst_strides == dense_strides(p.dst_dims);
  const bool act_post_op = p.act != Act::kLinear && !plan.gelu_after;
  if (act_post_op || p.residual) {
    dnnl::post_ops ops;
    if (act_post_op) {
      float a = 0, b = 0;
      dnnl::algorithm alg = act_alg(p.act, p.alpha, &a, &b);
      dnnl_compat::append_eltwise(ops, alg, a, b);
    }
    // dst holds a copy of the residual when the primitive runs: dst = matmul (+ bias) + dst
    if (p.residual) ops.append_sum(1.f);
    attr.set_post_ops(ops);
  }
  if (p.bias) {
    std::vector<int64_t> bd(p.dst_dims.size(), 1);
    bd.back() = p.dst_dims.back();
    plan.bias_md = memory::desc(bd, memory::data_type::f32, dense_strides(bd));
  }
  plan.pd = dnnl_compat::matmul_pd(cpu_engine(), plan.src_md, plan.wei_md, plan.bias_md, plan.dst_md, p.scale, attr);
  plan.prim = dnnl::matmul(plan.pd);
  return plan;
}

Plan& get_plan(const MatmulProblem& p, bool pack, std::string* key_out) {
  std::string key = key_of(p, pack);
  auto it = plans.find(key);
  if (it == plans.end()) {
    if (plans.size() >= kMaxPlans) plans.clear();
    it = plans.emplace(key, make_plan(p, pack)).first;
  }
  if (key_out) *key_out = key;
  return it->second;
}

}  // namespace

bool packable(const MatmulProblem& p, uint64_t pack_key) {
  bool wei_broadcast = true;
  for (size_t i = 0; i + 2 < p.wei_dims.size(); i++) wei_broadcast = wei_broadcast && p.wei_dims[i] == 1;
  return pack_key != 0 && wei_broadcast;
}

std::string problem_key(const MatmulProblem& p, bool pack) { return key_of(p, pack); }

bool run_onednn(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
                uint64_t pack_key, const float* residual) {
  const bool pack = packable(p, pack_key);
  if (p.residual) {
    if (residual == nullptr) throw JsError("matmul: residual missing");
    int64_t total = 1;
    for (auto d : p.dst_dims) total *= d;
    if (dense_strides(p.dst_dims) != p.dst_strides) throw JsError("matmul: a residual needs a dense output");
    if (residual != dst) std::memcpy(dst, residual, static_cast<size_t>(total) * sizeof(float));
  }
  std::string key;
  Plan& plan = get_plan(p, pack, &key);
  auto& eng = cpu_engine();
  memory src_m(plan.src_md, eng, const_cast<float*>(src));
  memory dst_m(plan.dst_md, eng, dst);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_m}, {DNNL_ARG_DST, dst_m}};
  bool reordered = false;
  if (pack) {
    auto& per_key = packed[pack_key];
    auto pit = per_key.find(key);
    if (pit == per_key.end()) {
      memory::desc want = plan.pd.weights_desc();
      memory::desc plain_md(p.wei_dims, memory::data_type::f32, p.wei_strides);
      Packed entry;
      entry.md = want;
      if (want == plain_md) {
        entry.in_place = true;
      } else {
        memory plain(plain_md, eng, const_cast<float*>(wei));
        entry.mem = memory(want, eng);
        entry.bytes = want.get_size();
        dnnl::reorder(plain, entry.mem).execute(cpu_stream(), plain, entry.mem);
        reordered = true;
      }
      pit = per_key.emplace(key, entry).first;
    }
    if (pit->second.in_place) {
      args.emplace(DNNL_ARG_WEIGHTS, memory(pit->second.md, eng, const_cast<float*>(wei)));
    } else {
      args.emplace(DNNL_ARG_WEIGHTS, pit->second.mem);
    }
  } else {
    args.emplace(DNNL_ARG_WEIGHTS, memory(plan.wei_md, eng, const_cast<float*>(wei)));
  }
  if (p.bias) args.emplace(DNNL_ARG_BIAS, memory(plan.bias_md, eng, const_cast<float*>(bias)));
  if (plan.scale != 1.f) dnnl_compat::add_scale_arg(eng, &plan.scale, args);
  plan.prim.execute(cpu_stream(), args);
  cpu_stream().wait();
  if (plan.gelu_after) {
    int64_t total = 1;
    for (auto d : p.dst_dims) total *= d;
    gelu_tanh_forward(dst, dst, total);
  }
  return reordered;
}

int release_packed(uint64_t key) {
  auto it = packed.find(key);
  if (it == packed.end()) return 0;
  int n = static_cast<int>(it->second.size());
  packed.erase(it);
  return n;
}

CacheStats cache_stats() {
  CacheStats s;
  s.primitives = static_cast<int64_t>(plans.size());
  for (auto& [k, m] : packed) {
    for (auto& [pk, e] : m) {
      s.packed++;
      s.packed_bytes += static_cast<int64_t>(e.bytes);
    }
  }
  return s;
}

void clear_caches() {
  plans.clear();
  packed.clear();
}

std::string matmul_impl(const MatmulProblem& p) {
  Plan& plan = get_plan(p, false, nullptr);
  return plan.pd.impl_info_str();
}

}  // namespace siglip2
