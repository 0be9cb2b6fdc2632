// The oneDNN calls whose form changed between 2.x (Debian 12's libdnnl-dev 2.6.3) and 3.x (Homebrew's onednn,
// Debian 13, or 3.7.2 built by scripts/build-onednn.sh): primitive descriptors built straight from their
// arguments instead of through an operation descriptor, post-op eltwise without its scale, softmax's algorithm,
// and matmul scales as a run-time argument instead of an attribute value. Every other file calls these.
#pragma once
#include <dnnl.hpp>

#include <unordered_map>

namespace siglip2::dnnl_compat {

using md = dnnl::memory::desc;

/** A matmul's primitive descriptor; `bias` may be a zero desc (no bias). With scale != 1 the attribute asks for a
 * scale on src (3.x, passed at run time by add_scale_arg) or an output scale (2.x): either way
 * dst = scale * (src x wei) + bias, then the post-ops. */
inline dnnl::matmul::primitive_desc matmul_pd(const dnnl::engine& eng, const md& src, const md& wei, const md& bias,
                                              const md& dst, float scale, dnnl::primitive_attr attr) {
#if DNNL_VERSION_MAJOR >= 3
  if (scale != 1.f) attr.set_scales_mask(DNNL_ARG_SRC, 0);
  if (bias.is_zero()) return dnnl::matmul::primitive_desc(eng, src, wei, dst, attr);
  return dnnl::matmul::primitive_desc(eng, src, wei, bias, dst, attr);
#else
  if (scale != 1.f) attr.set_output_scales(0, {scale});
  if (bias.is_zero()) return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, dst), attr, eng);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, bias, dst), attr, eng);
#endif
}

/** Adds the run-time scale argument matmul_pd asked for (3.x); `holder` must outlive the execution. Nothing on 2.x,
 * where the scale is part of the primitive. */
inline void add_scale_arg(const dnnl::engine& eng, float* holder, std::unordered_map<int, dnnl::memory>& args) {
#if DNNL_VERSION_MAJOR >= 3
  args.emplace(DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC,
               dnnl::memory(md({1}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a), eng, holder));
#else
  (void)eng;
  (void)holder;
  (void)args;
#endif
}

inline void append_eltwise(dnnl::post_ops& ops, dnnl::algorithm alg, float alpha, float beta) {
#if DNNL_VERSION_MAJOR >= 3
  ops.append_eltwise(alg, alpha, beta);
#else
  ops.append_eltwise(1.f, alg, alpha, beta);
#endif
}

/** Forward (training) and backward primitive descriptors of an eltwise op over one dense desc. */
inline dnnl::eltwise_forward::primitive_desc eltwise_fwd_pd(const dnnl::engine& eng, dnnl::algorithm alg, const md& m) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::eltwise_forward::primitive_desc(eng, dnnl::prop_kind::forward_training, alg, m, m, 0.f, 0.f);
#else
  return dnnl::eltwise_forward::primitive_desc(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, alg, m, 0.f, 0.f), eng);
#endif
}

inline dnnl::eltwise_backward::primitive_desc eltwise_bwd_pd(const dnnl::engine& eng, dnnl::algorithm alg, const md& m,
                                                             const dnnl::eltwise_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::eltwise_backward::primitive_desc(eng, alg, m, m, m, 0.f, 0.f, hint);
#else
  return dnnl::eltwise_backward::primitive_desc(dnnl::eltwise_backward::desc(alg, m, m, 0.f, 0.f), eng, hint);
#endif
}

/** Softmax over `axis` of one dense desc, forward (training) and backward. */
inline dnnl::softmax_forward::primitive_desc softmax_fwd_pd(const dnnl::engine& eng, const md& m, int axis) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::softmax_forward::primitive_desc(eng, dnnl::prop_kind::forward_training,
                                               dnnl::algorithm::softmax_accurate, m, m, axis);
#else
  return dnnl::softmax_forward::primitive_desc(
      dnnl::softmax_forward::desc(dnnl::prop_kind::forward_training, m, axis), eng);
#endif
}

inline dnnl::softmax_backward::primitive_desc softmax_bwd_pd(const dnnl::engine& eng, const md& m, int axis,
                                                             const dnnl::softmax_forward::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::softmax_backward::primitive_desc(eng, dnnl::algorithm::softmax_accurate, m, m, m, axis, hint);
#else
  return dnnl::softmax_backward::primitive_desc(dnnl::softmax_backward::desc(m, m, axis), eng, hint);
#endif
}

/** Whether oneDNN dispatches to AVX-512 (or beyond) at `isa`. */
inline bool is_avx512(dnnl::cpu_isa isa) {
  switch (isa) {
#if DNNL_VERSION_MAJOR < 3
    case dnnl::cpu_isa::avx512_mic:
    case dnnl::cpu_isa::avx512_mic_4ops:
#else
    case dnnl::cpu_isa::avx512_core_fp16:
    case dnnl::cpu_isa::avx512_core_amx_fp16:
#endif
    case dnnl::cpu_isa::avx512_core:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return true;
    default:
      return false;
  }
}

}  // namespace siglip2::dnnl_compat
