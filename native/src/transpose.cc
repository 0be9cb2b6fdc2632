// Transpose of float32 or int32 tensors of rank 1-6: adjacent axes that stay adjacent are merged, then oneDNN's
// reorder with permuted strides copies (impl 0 and 2; measured 1.2-3x faster than the loops below, README). impl 1,
// kept for comparison: contiguous runs copied when the last axis stays last, else 2-D tiles transposed between the
// input's last axis and the output's last axis, threaded over tiles.
#include <algorithm>
#include <cstring>
#include <tuple>
#include <map>
#include <sstream>
#include <vector>

#include "args.h"
#include "dnnl_context.h"
#include "elementwise.h"
#include "kernels.h"

namespace siglip2 {

using dnnl::memory;

namespace {

constexpr size_t kMaxRank = 6;
constexpr int64_t kTile = 32;

struct Plan {
  std::vector<int64_t> out_dims;    // merged output shape
  std::vector<int64_t> in_strides;  // input stride of each merged output axis
};

/** Merges output axes whose input axes are consecutive; drops size-1 axes. */
Plan merge(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm) {
  const size_t r = shape.size();
  std::vector<int64_t> stride(r, 1);
  for (size_t i = r; i-- > 1;) stride[i - 1] = stride[i] * shape[i];
  Plan p;
  for (size_t i = 0; i < r; i++) {
    const int64_t ax = perm[i];
    if (shape[ax] == 1) continue;
    if (!p.out_dims.empty() && p.in_strides.back() == stride[ax] * shape[ax]) {
      p.out_dims.back() *= shape[ax];
      p.in_strides.back() = stride[ax];
    } else {
      p.out_dims.push_back(shape[ax]);
      p.in_strides.push_back(stride[ax]);
    }
  }
  if (p.out_dims.empty()) {
    p.out_dims.push_back(1);
    p.in_strides.push_back(1);
  }
  return p;
}

template <typename T>
void transpose_loop(const T* x, T* y, const Plan& p) {
  const int64_t r = static_cast<int64_t>(p.out_dims.size());
  const auto& od = p.out_dims;
  const auto& is = p.in_strides;
  int64_t total = 1;
  for (int64_t d : od) total *= d;
  std::vector<int64_t> os(r, 1);  // output strides
  for (int64_t i = r - 1; i > 0; i--) os[i - 1] = os[i] * od[i];
  if (is[r - 1] == 1) {
    // the last axis stays last: copy runs of od[r-1]
    const int64_t run = od[r - 1], rows = total / run;
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
    for (int64_t row = 0; row < rows; row++) {
      int64_t rem = row, off = 0;
      for (int64_t d = r - 2; d >= 0; d--) {
        off += (rem % od[d]) * is[d];
        rem /= od[d];
      }
      std::memcpy(y + row * run, x + off, sizeof(T) * run);
    }
    return;
  }
  // j: the output axis that is the input's last (stride 1); tiles of [od[j], od[r-1]]
  int64_t j = 0;
  for (int64_t d = 0; d < r; d++)
    if (is[d] == 1) j = d;
  const int64_t nj = od[j], nl = od[r - 1];
  const int64_t tj = (nj + kTile - 1) / kTile, tl = (nl + kTile - 1) / kTile;
  const int64_t outer = total / (nj * nl);
  const int64_t jobs = outer * tj * tl;
  const int64_t sl = is[r - 1], sj = os[j];
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (int64_t job = 0; job < jobs; job++) {
    int64_t rem = job;
    const int64_t bl = rem % tl;
    rem /= tl;
    const int64_t bj = rem % tj;
    rem /= tj;
    int64_t xoff = 0, yoff = 0;
    for (int64_t d = r - 2; d >= 0; d--) {
      if (d == j) continue;
      const int64_t i = rem % od[d];
      rem /= od[d];
      xoff += i * is[d];
      yoff += i * os[d];
    }
    const int64_t j0 = bj * kTile, j1 = std::min(nj, j0 + kTile);
    const int64_t l0 = bl * kTile, l1 = std::min(nl, l0 + kTile);
    for (int64_t a = j0; a < j1; a++) {
      const T* xs = x + xoff + a;
      T* ys = y + yoff + a * sj;
      for (int64_t b = l0; b < l1; b++) ys[b] = xs[b * sl];
    }
  }
}

struct ReorderKey {
  std::vector<int64_t> dims, strides;
  bool i32;
  bool operator<(const ReorderKey& o) const {
    return std::tie(dims, strides, i32) < std::tie(o.dims, o.strides, o.i32);
  }
};

void transpose_onednn(const void* x, void* y, const Plan& p, bool i32) {
  struct Reorder {
    dnnl::reorder prim;
    memory::desc src, dst;
  };
  static auto& cache = *new std::map<ReorderKey, Reorder>();  // never destroyed
  ReorderKey key{p.out_dims, p.in_strides, i32};
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() > 256) cache.clear();
    const auto dt = i32 ? memory::data_type::s32 : memory::data_type::f32;
    memory::desc src(p.out_dims, dt, p.in_strides);
    std::vector<int64_t> os(p.out_dims.size(), 1);
    for (size_t i = os.size() - 1; i > 0; i--) os[i - 1] = os[i] * p.out_dims[i];
    memory::desc dst(p.out_dims, dt, os);
    dnnl::reorder::primitive_desc pd(cpu_engine(), src, cpu_engine(), dst);
    it = cache.emplace(key, Reorder{dnnl::reorder(pd), src, dst}).first;
  }
  auto& eng = cpu_engine();
  memory sm(it->second.src, eng, const_cast<void*>(x));
  memory dm(it->second.dst, eng, y);
  it->second.prim.execute(cpu_stream(), sm, dm);
  cpu_stream().wait();
}

// transpose(x, out, shape, perm, impl): impl 0 the default (oneDNN), 1 the loops, 2 oneDNN
napi_value transpose_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "Transpose", 5);
  const std::vector<int64_t> shape = args.ints_at(2, "shape", 1, kMaxRank);
  const std::vector<int64_t> perm = args.ints_at(3, "perm", 0, kMaxRank);
  const int64_t impl = args.int_at(4, "impl", 0);
  std::ostringstream s;
  s << "x " << dims_str(shape) << ", perm " << dims_str(perm);
  args.set_shapes(s.str());
  if (shape.empty()) args.fail("x must have rank 1 to 6");
  if (perm.size() != shape.size()) args.fail("perm must have one entry per axis of x");
  std::vector<bool> seen(shape.size(), false);
  for (int64_t a : perm) {
    if (a >= static_cast<int64_t>(shape.size()) || seen[a]) args.fail("perm must be a permutation of the axes");
    seen[a] = true;
  }
  if (impl > 2) args.fail("impl must be 0, 1 or 2");
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const napi_typedarray_type type = args.typed_type(0, "x");
  if (type != napi_float32_array && type != napi_int32_array) args.fail("x must be a Float32Array or Int32Array");
  const void* x = args.typed_at(0, "x", n, type);
  void* y = args.typed_at(1, "out", n, type);
  check_no_alias(args, x, n * 4, y, n * 4, "x and out");
  const Plan p = merge(shape, perm);
  // oneDNN's reorder beat the loops on every shape measured (1.2-3x, README)
  if (impl != 1) {
    transpose_onednn(x, y, p, type == napi_int32_array);
  } else if (type == napi_int32_array) {
    transpose_loop(static_cast<const int32_t*>(x), static_cast<int32_t*>(y), p);
  } else {
    transpose_loop(static_cast<const float*>(x), static_cast<float*>(y), p);
  }
  return undefined_value(env);
}

}  // namespace

napi_value Transpose(napi_env env, napi_callback_info info) { return guard(env, "Transpose", transpose_body, info); }

}  // namespace siglip2
