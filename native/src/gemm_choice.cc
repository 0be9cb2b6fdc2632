// Which GEMM library runs each matmul problem (SIGLIP2_NATIVE_GEMM): by default, where oneDNN runs AVX2 (or
// less), OpenBLAS cblas_sgemm (run in OpenMP tiles, blas_matmul.cc) for products under kSmallRows output rows and
// oneDNN for the rest and for rank 4; where oneDNN runs AVX-512, oneDNN for every product;
// `onednn` or `openblas` forces one; `auto` measures per problem. oneDNN 2.6.3 on AVX2 (gemm:jit) and OpenBLAS
// 0.3.21 are each faster on some of the model's shapes (README, native section). Under auto each distinct problem
// (shapes, strides, transposes, batch, fused ops, packing, threads) is measured on the calls that need it anyway:
// kWarmCalls calls warm both libraries up (oneDNN creates its primitive and packs the weights), the next
// 2 * kTimedCalls alternate and are timed, and from then on OpenBLAS runs it if its best time is kOpenBlasMargin
// times shorter than oneDNN's. No call is repeated for the measurement; a model's layers share their shapes, so the
// choice is made within the first forward passes. Problems OpenBLAS cannot express (a dense epilogue on a strided
// output) and small ones (under kMinTunedFlops, where timing is noise) run on oneDNN.
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "args.h"
#include "blas_matmul.h"
#include "dnnl_compat.h"
#include "dnnl_context.h"
#include "kernels.h"

namespace siglip2 {

namespace {

enum class Lib { kOneDnn = 0, kOpenBlas = 1 };

constexpr double kMinTunedFlops = 4e6;
constexpr int kWarmCalls = 2;
constexpr int kTimedCalls = 3;  // per library
constexpr size_t kMaxChoices = 4096;
// OpenBLAS must be this much faster in the timed calls to take a problem: a per-call time misses what OpenBLAS's own
// threads cost the ops after it, and in whole-model runs (bench/native_fusion_ab.ts) choosing it on near-equal
// timings made so400m slower (0.88-0.91x), while the base shapes where it is far ahead gained.
constexpr double kOpenBlasMargin = 1.15;

struct Choice {
  int calls = 0;
  bool decided = false;
  Lib lib = Lib::kOneDnn;
  double best_s[2] = {1e30, 1e30};
  double flops = 0;
  std::string shape;
  bool packed = false;
  int threads = 0;
};

std::unordered_map<std::string, Choice>& choices = *new std::unordered_map<std::string, Choice>();

const char* lib_name(Lib l) { return l == Lib::kOpenBlas ? "openblas" : "onednn"; }

/** SIGLIP2_NATIVE_GEMM: unset (or "default"), onednn, openblas or auto. */
enum class Policy { kDefault, kOneDnn, kOpenBlas, kAuto };

Policy policy() {
  const char* v = std::getenv("SIGLIP2_NATIVE_GEMM");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "default") == 0) return Policy::kDefault;
  if (std::strcmp(v, "auto") == 0) return Policy::kAuto;
  if (std::strcmp(v, "onednn") == 0) return Policy::kOneDnn;
  if (std::strcmp(v, "openblas") == 0) return Policy::kOpenBlas;
  throw JsError(std::string("SIGLIP2_NATIVE_GEMM must be default, onednn, openblas or auto, got '") + v + "'");
}

/**
 * The default: OpenBLAS (on one thread per OpenMP thread, blas_matmul.cc) for products of fewer than kSmallRows
 * output rows, oneDNN for the rest and for the attention's per-head products (rank 4, k = the head size). On the
 * development machine (AVX2, `npm run bench:gemm`) oneDNN 2.6.3's gemm:jit ran base's one-image fc1 ([196,768] x
 * [768,3072]) at 66-83 GFLOP/s against 98-157 for the tiled OpenBLAS, while from 1,568 rows up the two were within
 * noise of each other and whole-model runs of base at 8 images favoured oneDNN (README, native section).
 */
constexpr int64_t kSmallRows = 1024;

/**
 * Whether the default puts small products on OpenBLAS on a CPU where oneDNN dispatches to `isa`: not where oneDNN
 * runs AVX-512. On a 16-core Xeon with AVX-512 and AMX (the device machine, README) OpenBLAS 0.3.21 reached about
 * 220 GFLOP/s on the reference sgemm against oneDNN's 1,100-1,400, and so400m one image took 1.33 s with OpenBLAS
 * under 1,024 rows against 0.32 s on oneDNN alone (base one image 0.28 against 0.078 s).
 */
bool small_rows_on_openblas(dnnl::cpu_isa isa) { return !dnnl_compat::is_avx512(isa); }

bool small_rows_on_openblas_here() {
  static const bool v = small_rows_on_openblas(dnnl::get_effective_cpu_isa());
  return v;
}

Lib default_lib(const MatmulProblem& p, bool small_rows_openblas) {
  const size_t r = p.dst_dims.size();
  if (r > 3 || !small_rows_openblas) return Lib::kOneDnn;
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < r; i++) rows *= p.dst_dims[i];
  return rows < kSmallRows ? Lib::kOpenBlas : Lib::kOneDnn;
}

double flops_of(const MatmulProblem& p) {
  double f = 2.0 * static_cast<double>(p.src_dims.back());
  for (auto d : p.dst_dims) f *= static_cast<double>(d);
  return f;
}

std::string shape_of(const MatmulProblem& p) {
  const size_t r = p.dst_dims.size();
  auto trans = [&](const std::vector<int64_t>& s) { return s[r - 1] != 1 && s[r - 2] == 1; };
  std::string s = dims_str(p.src_dims) + (trans(p.src_strides) ? "^T" : "") + " x " + dims_str(p.wei_dims) +
                  (trans(p.wei_strides) ? "^T" : "");
  if (p.bias) s += " +bias";
  if (p.act == Act::kGeluTanh) s += " gelu_tanh";
  else if (p.act != Act::kLinear) s += " act" + std::to_string(static_cast<int>(p.act));
  if (p.residual) s += " +residual";
  return s;
}

/** Runs the problem on `lib`; returns whether this call copied `wei` into a packed layout (a one-time reorder, so
 * no measure of the library's speed). */
bool run_lib(Lib lib, const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
             uint64_t pack_key, const float* residual) {
  if (lib == Lib::kOpenBlas) {
    run_blas(p, src, wei, bias, dst, residual);
    return false;
  }
  return run_onednn(p, src, wei, bias, dst, pack_key, residual);
}

}  // namespace

bool openblas_allowed() {
  switch (policy()) {
    case Policy::kOneDnn:
      return false;
    case Policy::kDefault:
      return small_rows_on_openblas_here();
    default:
      return true;
  }
}

bool runs_on_openblas(const MatmulProblem& p) {
  if (!blas_supports(p)) return false;
  switch (policy()) {
    case Policy::kDefault:
      return default_lib(p, small_rows_on_openblas_here()) == Lib::kOpenBlas;
    case Policy::kOpenBlas:
      return true;
    default:
      return false;
  }
}

int64_t default_openblas_below_rows() { return small_rows_on_openblas_here() ? kSmallRows : 0; }

bool run_matmul(const MatmulProblem& p, const float* src, const float* wei, const float* bias, float* dst,
                uint64_t pack_key, const float* residual) {
  if (!blas_supports(p)) return run_onednn(p, src, wei, bias, dst, pack_key, residual);
  switch (policy()) {
    case Policy::kDefault:
      return run_lib(default_lib(p, small_rows_on_openblas_here()), p, src, wei, bias, dst, pack_key, residual);
    case Policy::kOneDnn:
      return run_onednn(p, src, wei, bias, dst, pack_key, residual);
    case Policy::kOpenBlas:
      return run_lib(Lib::kOpenBlas, p, src, wei, bias, dst, pack_key, residual);
    case Policy::kAuto:
      break;
  }
  const double flops = flops_of(p);
  if (flops < kMinTunedFlops) return run_onednn(p, src, wei, bias, dst, pack_key, residual);
  const bool pack = packable(p, pack_key);
  const int threads = omp_get_max_threads();
  const std::string key = problem_key(p, pack) + "|" + std::to_string(threads);
  auto it = choices.find(key);
  if (it == choices.end()) {
    if (choices.size() >= kMaxChoices) choices.clear();
    Choice c;
    c.flops = flops;
    c.shape = shape_of(p);
    c.packed = pack;
    c.threads = threads;
    it = choices.emplace(key, c).first;
  }
  Choice& c = it->second;
  if (c.decided) return run_lib(c.lib, p, src, wei, bias, dst, pack_key, residual);
  const Lib lib = c.calls % 2 == 0 ? Lib::kOneDnn : Lib::kOpenBlas;
  const auto t0 = std::chrono::steady_clock::now();
  const bool copied = run_lib(lib, p, src, wei, bias, dst, pack_key, residual);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (copied) return true;  // not counted: the next call of the problem runs oneDNN again
  if (c.calls >= kWarmCalls) c.best_s[static_cast<int>(lib)] = std::min(c.best_s[static_cast<int>(lib)], s);
  if (++c.calls == kWarmCalls + 2 * kTimedCalls) {
    c.decided = true;
    c.lib = c.best_s[1] * kOpenBlasMargin < c.best_s[0] ? Lib::kOpenBlas : Lib::kOneDnn;
  }
  return false;
}

namespace {

// gemmChoices() -> [{ shape, packed, library, onednnGflops, openblasGflops, threads }] for every decided problem
napi_value choices_body(napi_env env, napi_callback_info) {
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t i = 0;
  for (auto& entry : choices) {
    const Choice& c = entry.second;
    if (!c.decided) continue;
    napi_value o;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "shape", js_string(env, c.shape));
    napi_value packed;
    napi_get_boolean(env, c.packed, &packed);
    napi_set_named_property(env, o, "packed", packed);
    napi_set_named_property(env, o, "library", js_string(env, lib_name(c.lib)));
    napi_set_named_property(env, o, "onednnGflops", js_number(env, c.flops / c.best_s[0] / 1e9));
    napi_set_named_property(env, o, "openblasGflops", js_number(env, c.flops / c.best_s[1] / 1e9));
    napi_set_named_property(env, o, "threads", js_number(env, c.threads));
    napi_set_element(env, arr, i++, o);
  }
  return arr;
}

napi_value clear_body(napi_env env, napi_callback_info) {
  choices.clear();
  return undefined_value(env);
}

// defaultGemmFor(rows, rank, isa) -> 'openblas' | 'onednn': the default's choice for a product of `rows` output
// rows and rank `rank` where oneDNN dispatches to `isa` ('avx2', 'avx512_core', ...: dnnl::cpu_isa's names).
napi_value default_for_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "defaultGemmFor", 3);
  const int64_t rows = args.int_at(0, "rows", 1);
  const int64_t rank = args.int_at(1, "rank", 2);
  const std::string isa = args.string_at(2, "isa");
  static const std::pair<const char*, dnnl::cpu_isa> names[] = {
      {"sse41", dnnl::cpu_isa::sse41},
      {"avx", dnnl::cpu_isa::avx},
      {"avx2", dnnl::cpu_isa::avx2},
      {"avx2_vnni", dnnl::cpu_isa::avx2_vnni},
      {"avx512_core", dnnl::cpu_isa::avx512_core},
      {"avx512_core_vnni", dnnl::cpu_isa::avx512_core_vnni},
      {"avx512_core_bf16", dnnl::cpu_isa::avx512_core_bf16},
      {"avx512_core_amx", dnnl::cpu_isa::avx512_core_amx},
  };
  for (const auto& n : names) {
    if (isa != n.first) continue;
    if (rank < 2 || rank > 4) throw JsError("defaultGemmFor: rank must be 2-4, got " + std::to_string(rank));
    MatmulProblem p;
    p.dst_dims.assign(static_cast<size_t>(rank), 1);
    p.dst_dims[static_cast<size_t>(rank) - 2] = rows;
    return js_string(env, lib_name(default_lib(p, small_rows_on_openblas(n.second))));
  }
  throw JsError("defaultGemmFor: unknown isa '" + isa + "'");
}

}  // namespace

napi_value GemmChoices(napi_env env, napi_callback_info info) { return guard(env, "gemmChoices", choices_body, info); }
napi_value ClearGemmChoices(napi_env env, napi_callback_info info) {
  return guard(env, "clearGemmChoices", clear_body, info);
}
napi_value DefaultGemmFor(napi_env env, napi_callback_info info) {
  return guard(env, "defaultGemmFor", default_for_body, info);
}

}  // namespace siglip2
