// MatMul, BatchMatMul and _FusedMatMul: [batchA, m, k] x [batchB, k, n] (either batch 1 broadcasts), optional
// transposed operands (by strides, no copies), bias over the last axis, a fused activation, a fused residual add,
// and pre-packed weights. Each distinct problem runs on oneDNN or OpenBLAS, whichever measured faster
// (gemm_choice.cc).
#include "args.h"
#include "dnnl_context.h"
#include "kernels.h"

#include <sstream>

namespace siglip2 {

namespace {

// matmul(a, b, out, batchA, batchB, m, k, n, transA, transB, bias | null, act, alpha, packKey, residual?)
//   -> whether this call copied b into a packed layout (its mapped pages may then be dropped)
// residual: a dense [batch, m, n] added to the result last (only with the linear activation); `out` itself
//   accumulates in place (out += the product), with no copy
napi_value matmul_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "MatMul", 15);
  const int64_t batch_a = args.int_at(3, "batchA", 1);
  const int64_t batch_b = args.int_at(4, "batchB", 1);
  const int64_t m = args.int_at(5, "m", 1);
  const int64_t k = args.int_at(6, "k", 1);
  const int64_t n = args.int_at(7, "n", 1);
  const bool ta = args.bool_at(8, "transposeA");
  const bool tb = args.bool_at(9, "transposeB");
  const int64_t act = args.int_at(11, "activation", 0);
  const double alpha = args.num_at(12, "alpha");
  const int64_t pack_key = args.int_at(13, "packKey", 0);
  std::ostringstream shapes;
  shapes << "a " << dims_str(ta ? std::vector<int64_t>{batch_a, k, m} : std::vector<int64_t>{batch_a, m, k})
         << (ta ? " (transposed)" : "") << ", b "
         << dims_str(tb ? std::vector<int64_t>{batch_b, n, k} : std::vector<int64_t>{batch_b, k, n})
         << (tb ? " (transposed)" : "");
  args.set_shapes(shapes.str());
  if (batch_a != batch_b && batch_a != 1 && batch_b != 1) args.fail("batch sizes do not broadcast");
  if (act > static_cast<int64_t>(Act::kGeluTanh)) args.fail("unknown activation");
  const int64_t batch = std::max(batch_a, batch_b);
  float* a = args.f32_at(0, "a", batch_a * m * k);
  float* b = args.f32_at(1, "b", batch_b * k * n);
  float* out = args.f32_at(2, "out", batch * m * n);
  float* bias = args.f32_opt(10, "bias", n);
  float* residual = args.f32_opt(14, "residual", batch * m * n);
  if ((a <= out && out < a + batch_a * m * k) || (b <= out && out < b + batch_b * k * n)) {
    args.fail("out overlaps an input");
  }
  if (residual != nullptr && residual != out && residual < out + batch * m * n && out < residual + batch * m * n) {
    args.fail("out overlaps the residual (only out itself may be the residual)");
  }
  if (residual != nullptr && act != static_cast<int64_t>(Act::kLinear)) {
    args.fail("a residual is fused only with the linear activation");
  }

  MatmulProblem p;
  if (batch == 1) {
    p.src_dims = {m, k};
    p.src_strides = ta ? std::vector<int64_t>{1, m} : std::vector<int64_t>{k, 1};
    p.wei_dims = {k, n};
    p.wei_strides = tb ? std::vector<int64_t>{1, k} : std::vector<int64_t>{n, 1};
    p.dst_dims = {m, n};
  } else {
    p.src_dims = {batch_a, m, k};
    p.src_strides = ta ? std::vector<int64_t>{m * k, 1, m} : std::vector<int64_t>{m * k, k, 1};
    p.wei_dims = {batch_b, k, n};
    p.wei_strides = tb ? std::vector<int64_t>{k * n, 1, k} : std::vector<int64_t>{k * n, n, 1};
    p.dst_dims = {batch, m, n};
  }
  p.dst_strides = dense_strides(p.dst_dims);
  p.bias = bias != nullptr;
  p.act = static_cast<Act>(act);
  p.alpha = static_cast<float>(alpha);
  p.residual = residual != nullptr;
  napi_value copied;
  napi_get_boolean(env, run_matmul(p, a, b, bias, out, static_cast<uint64_t>(pack_key), residual), &copied);
  return copied;
}

// matmulImpl(m, k, n, transA, transB): the implementation oneDNN picks for a 2-D problem.
napi_value matmul_impl_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "MatMul", 5);
  const int64_t m = args.int_at(0, "m", 1), k = args.int_at(1, "k", 1), n = args.int_at(2, "n", 1);
  const bool ta = args.bool_at(3, "transposeA"), tb = args.bool_at(4, "transposeB");
  MatmulProblem p;
  p.src_dims = {m, k};
  p.src_strides = ta ? std::vector<int64_t>{1, m} : std::vector<int64_t>{k, 1};
  p.wei_dims = {k, n};
  p.wei_strides = tb ? std::vector<int64_t>{1, k} : std::vector<int64_t>{n, 1};
  p.dst_dims = {m, n};
  p.dst_strides = dense_strides(p.dst_dims);
  std::string impl = matmul_impl(p);
  napi_value s;
  napi_create_string_utf8(env, impl.c_str(), impl.size(), &s);
  return s;
}

}  // namespace

napi_value Matmul(napi_env env, napi_callback_info info) { return guard(env, "MatMul", matmul_body, info); }
napi_value MatmulImpl(napi_env env, napi_callback_info info) {
  return guard(env, "MatMul", matmul_impl_body, info);
}

}  // namespace siglip2
