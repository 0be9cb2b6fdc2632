// siglip2_native: TF.js kernels on oneDNN for Node (see src/backends/native/). Module set-up, threads, caches.
#include <cblas.h>
#include <node_api.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>

#include <string>

#include "args.h"
#include "dnnl_context.h"
#include "kernels.h"

namespace siglip2 {

namespace {

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "SSE4.1";
    case dnnl::cpu_isa::avx: return "AVX";
    case dnnl::cpu_isa::avx2: return "AVX2";
    case dnnl::cpu_isa::avx2_vnni: return "AVX2 VNNI";
#if DNNL_VERSION_MAJOR < 3
    case dnnl::cpu_isa::avx512_mic: return "AVX-512 MIC";
    case dnnl::cpu_isa::avx512_mic_4ops: return "AVX-512 MIC 4OPS";
#else
    case dnnl::cpu_isa::avx512_core_fp16: return "AVX-512 FP16";
    case dnnl::cpu_isa::avx512_core_amx_fp16: return "AVX-512 AMX FP16";
#endif
    case dnnl::cpu_isa::avx512_core: return "AVX-512";
    case dnnl::cpu_isa::avx512_core_vnni: return "AVX-512 VNNI";
    case dnnl::cpu_isa::avx512_core_bf16: return "AVX-512 BF16";
    case dnnl::cpu_isa::avx512_core_amx: return "AVX-512 AMX";
    default: return "all";
  }
}

void set_prop(napi_env env, napi_value obj, const char* name, napi_value v) {
  napi_set_named_property(env, obj, name, v);
}

// info() -> { library, version, isa, threads, threading, blas, openBlasBelowRows }
napi_value info_body(napi_env env, napi_callback_info) {
  const dnnl_version_t* ver = dnnl_version();
  napi_value obj;
  napi_create_object(env, &obj);
  set_prop(env, obj, "library", js_string(env, "oneDNN"));
  set_prop(env, obj, "version",
           js_string(env, std::to_string(ver->major) + "." + std::to_string(ver->minor) + "." + std::to_string(ver->patch)));
  set_prop(env, obj, "isa", js_string(env, isa_name(dnnl::get_effective_cpu_isa())));
  set_prop(env, obj, "threads", js_number(env, omp_get_max_threads()));
  set_prop(env, obj, "threading", js_string(env, "OpenMP"));
  set_prop(env, obj, "blas", js_string(env, openblas_get_config()));
  set_prop(env, obj, "openBlasBelowRows", js_number(env, static_cast<double>(default_openblas_below_rows())));
  return obj;
}

// setThreads(n)
napi_value set_threads_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "setThreads", 1);
  const int64_t n = args.int_at(0, "threads", 1);
  omp_set_num_threads(static_cast<int>(n));
  return undefined_value(env);
}

// releasePacked(key) -> count
napi_value release_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "releasePacked", 1);
  return js_number(env, release_packed(static_cast<uint64_t>(args.int_at(0, "key", 1))));
}

// cacheStats() -> { packed, primitives, packedBytes, attentionScratchBytes, encoderLayerScratchBytes,
//                   encoderLayerTeamCalls }
napi_value stats_body(napi_env env, napi_callback_info) {
  CacheStats s = cache_stats();
  napi_value obj;
  napi_create_object(env, &obj);
  set_prop(env, obj, "packed", js_number(env, static_cast<double>(s.packed)));
  set_prop(env, obj, "primitives", js_number(env, static_cast<double>(s.primitives)));
  set_prop(env, obj, "packedBytes", js_number(env, static_cast<double>(s.packed_bytes)));
  set_prop(env, obj, "attentionScratchBytes", js_number(env, static_cast<double>(attention_scratch_bytes())));
  set_prop(env, obj, "encoderLayerScratchBytes",
           js_number(env, static_cast<double>(encoder_layer_scratch_bytes())));
  set_prop(env, obj, "encoderLayerTeamCalls", js_number(env, static_cast<double>(encoder_layer_team_calls())));
  return obj;
}

napi_value clear_body(napi_env env, napi_callback_info) {
  clear_caches();
  return undefined_value(env);
}

// oneDNN 2.6.3's AVX2 sgemm (gemm:jit) corrupts the malloc heap when a signal handler runs on the calling thread
// in the middle of it (under valgrind the thread's stack pointer is seen moving into the heap): V8's sampling
// profiler (node --cpu-prof) sends SIGPROF to the main thread every few ms and the shapes demo aborted with
// "corrupted size vs. prev_size"; with DNNL_MAX_CPU_ISA=AVX, or no native matmul, it did not. So every kernel that
// may run oneDNN runs with asynchronous signals blocked on the calling thread: they are delivered when it returns
// (synchronous ones, SEGV/BUS/FPE/ILL/TRAP/ABRT, stay unblocked). Two syscalls per call, under a microsecond.
// test/native/profiler_signal.test.ts keeps it so.
template <napi_callback F>
napi_value signal_safe(napi_env env, napi_callback_info info) {
  sigset_t block, old;
  sigfillset(&block);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  napi_value r = F(env, info);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return r;
}

#define GUARDED(name, body) \
  napi_value name(napi_env env, napi_callback_info info) { return guard(env, #name, body, info); }
GUARDED(Info, info_body)
GUARDED(SetThreads, set_threads_body)
GUARDED(ReleasePacked, release_body)
GUARDED(CacheStatsFn, stats_body)
GUARDED(ClearCaches, clear_body)

napi_value init(napi_env env, napi_value exports) {
  // OpenBLAS runs single-threaded inside the OpenMP threads' partition of each product (blas_matmul.cc): its own
  // pthread pool would compete with OpenMP's for the cores.
  openblas_set_num_threads(1);
  const napi_property_descriptor props[] = {
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"releasePacked", nullptr, ReleasePacked, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"cacheStats", nullptr, CacheStatsFn, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"clearCaches", nullptr, ClearCaches, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"matmul", nullptr, signal_safe<Matmul>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"matmulImpl", nullptr, signal_safe<MatmulImpl>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"layerNorm", nullptr, signal_safe<LayerNorm>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"layerNormBackward", nullptr, signal_safe<LayerNormBackward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"geluTanh", nullptr, signal_safe<GeluTanh>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"geluTanhBackward", nullptr, signal_safe<GeluTanhBackward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"softmax", nullptr, signal_safe<Softmax>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"attention", nullptr, signal_safe<Attention>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"attentionBackward", nullptr, signal_safe<AttentionBackward>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"encoderLayer", nullptr, signal_safe<EncoderLayer>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"benchSgemm", nullptr, signal_safe<BenchSgemm>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"transpose", nullptr, signal_safe<Transpose>, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"reduceSum", nullptr, ReduceSum, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"adamw", nullptr, AdamW, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"mapFiles", nullptr, MapFiles, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"isMapped", nullptr, IsMapped, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"releasePages", nullptr, ReleasePages, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"mappedStats", nullptr, MappedStats, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"gemmChoices", nullptr, GemmChoices, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"clearGemmChoices", nullptr, ClearGemmChoices, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"defaultGemmFor", nullptr, DefaultGemmFor, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

}  // namespace siglip2

NAPI_MODULE(NODE_GYP_MODULE_NAME, siglip2::init)
