// The GEMM libraries Debian offers besides the two the native addon links (oneDNN, OpenBLAS), on the model's
// matMul shapes, in one process, interleaved round by round (medians of the timed runs): why the addon multiplies
// on OpenBLAS.
//
//   npm run bench:gemm-libs [-- --model base|so400m] [--rounds 10]
//
// Every variant uses the same threads (OMP_NUM_THREADS, default all cores) and computes C = A B for a row-major
// activation A [m,k] and weight B [k,n]. A library whose development package is missing is left out (run.sh
// compiles what is installed and says what is not).
//   openblas tiles   OpenBLAS cblas_sgemm, single-threaded in OpenMP column blocks: the addon's small-row path
//   blis tiles       BLIS bli_sgemm in the same blocks
//   eigen tiles      Eigen 3 products in the same blocks
//   libxsmm panels   libxsmm's JIT kernels on the weight packed once into 32-column panels (as MLAS packs its
//                    weights), the activation read in place; OpenMP over panels
//   xnnpack fc       XNNPACK's fully-connected operator (weights packed at creation), pthreadpool threads
//   onednn3 brgemm   oneDNN 3.x's brgemm matmul (its f32 AVX2 kernel, which the library ranks after gemm:jit) on
//                    the weight packed once, on its own threads
//   onednn3 brgemm tiles  the same in the OpenMP column blocks: one single-threaded primitive per thread (one
//                    object each: oneDNN 3.7.2 computes wrong values when two threads run one object at once), each
//                    with its block of the weight packed once
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cblas.h>
#ifdef HAVE_BLIS
#include BLIS_HEADER  // a path: its folder also holds a cblas.h, which must not shadow OpenBLAS's
#endif
#ifdef HAVE_EIGEN
#include <Eigen/Dense>
#endif
#ifdef HAVE_LIBXSMM
#include <libxsmm.h>
#endif
#ifdef HAVE_ONEDNN3
#include <dnnl.hpp>
#endif
#ifdef HAVE_XNNPACK
#include <pthreadpool.h>
#include <xnnpack.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace {

struct Problem {
  std::string label;
  int m, k, n;
};

struct Operands {
  int m, k, n;
  std::vector<float> a, b, c;
};

/** One library's way to run the product; `prepare` may pack the weight (not timed), `run` is timed. */
struct Variant {
  std::string name;
  std::function<void(Operands&)> prepare;
  std::function<void(Operands&)> run;
  std::function<void()> release;
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/** Column block [c0, c1) of thread t of nt: whole 64-byte lines, as the addon splits. */
void column_block(int n, int t, int nt, int* c0, int* c1) {
  const int per = ((n + nt - 1) / nt + 15) / 16 * 16;
  *c0 = std::min(n, t * per);
  *c1 = std::min(n, *c0 + per);
}

template <typename F>
void in_column_blocks(int n, F&& f) {
#pragma omp parallel
  {
    int c0, c1;
    column_block(n, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
    if (c1 > c0) f(c0, c1);
  }
}

std::vector<Variant> variants() {
  std::vector<Variant> v;
  auto none = [](Operands&) {};
  auto nothing = []() {};
  v.push_back({"openblas tiles", none,
               [](Operands& o) {
                 in_column_blocks(o.n, [&](int c0, int c1) {
                   cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, o.m, c1 - c0, o.k, 1.f, o.a.data(), o.k,
                               o.b.data() + c0, o.n, 0.f, o.c.data() + c0, o.n);
                 });
               },
               nothing});
#ifdef HAVE_BLIS
  v.push_back({"blis tiles", none,
               [](Operands& o) {
                 in_column_blocks(o.n, [&](int c0, int c1) {
                   float one = 1.f, zero = 0.f;
                   bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, o.m, c1 - c0, o.k, &one, o.a.data(), o.k, 1,
                             o.b.data() + c0, o.n, 1, &zero, o.c.data() + c0, o.n, 1);  // its own threads: 1
                 });
               },
               nothing});
#endif
#ifdef HAVE_EIGEN
  v.push_back({"eigen tiles", none,
               [](Operands& o) {
                 using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
                 using View = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;
                 using ConstView = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;
                 in_column_blocks(o.n, [&](int c0, int c1) {
                   ConstView a(o.a.data(), o.m, o.k, Eigen::OuterStride<>(o.k));
                   ConstView b(o.b.data() + c0, o.k, c1 - c0, Eigen::OuterStride<>(o.n));
                   View c(o.c.data() + c0, o.m, c1 - c0, Eigen::OuterStride<>(o.n));
                   c.noalias() = a * b;
                 });
               },
               nothing});
#endif
#ifdef HAVE_LIBXSMM
  {
    // libxsmm is column-major: C^T [n,m] = B^T [n,k] A^T [k,m], so the weight is libxsmm's A (vector loads along
    // n) and the activation its B (broadcasts along k), as MLAS's kernels read them.
    static constexpr int kPanel = 32;
    auto packed = std::make_shared<std::vector<float>>();
    v.push_back({"libxsmm panels",
                 [packed](Operands& o) {
                   const int panels = (o.n + kPanel - 1) / kPanel;
                   packed->assign(static_cast<size_t>(panels) * kPanel * o.k, 0.f);
                   for (int p = 0; p < panels; p++)
                     for (int kk = 0; kk < o.k; kk++)
                       for (int c = 0; c < kPanel && p * kPanel + c < o.n; c++)
                         (*packed)[(static_cast<size_t>(p) * o.k + kk) * kPanel + c] =
                             o.b[static_cast<size_t>(kk) * o.n + p * kPanel + c];
                 },
                 [packed](Operands& o) {
                   const int panels = (o.n + kPanel - 1) / kPanel;
                   const libxsmm_blasint lda = kPanel, ldb = o.k, ldc = o.n;
                   const float alpha = 1.f, beta = 0.f;
                   const int flags = LIBXSMM_GEMM_FLAGS('N', 'N'), prefetch = LIBXSMM_PREFETCH_NONE;
#pragma omp parallel for schedule(static)
                   for (int p = 0; p < panels; p++) {
                     const int cols = std::min(kPanel, o.n - p * kPanel);
                     libxsmm_smmfunction kernel = libxsmm_smmdispatch(cols, o.m, o.k, &lda, &ldb, &ldc, &alpha,
                                                                      &beta, &flags, &prefetch);
                     kernel(packed->data() + static_cast<size_t>(p) * o.k * kPanel, o.a.data(),
                            o.c.data() + p * kPanel);
                   }
                 },
                 [packed]() { packed->clear(); }});
  }
#endif
#ifdef HAVE_ONEDNN3
  for (bool tiles : {false, true}) {
    struct Block {
      dnnl::matmul prim;
      dnnl::memory wei;
      dnnl::memory::desc src, dst;
      int c0 = 0;
    };
    auto blocks = std::make_shared<std::vector<Block>>();
    // one engine for both variants: their threads keep one stream each, made on it
    static auto eng = std::make_shared<dnnl::engine>(dnnl::engine::kind::cpu, 0);
    v.push_back({tiles ? "onednn3 brgemm tiles" : "onednn3 brgemm",
                 [blocks, eng, tiles](Operands& o) {
                   using dt = dnnl::memory::data_type;
                   const int parts = tiles ? omp_get_max_threads() : 1;
                   dnnl::stream s(*eng);
                   blocks->clear();
                   for (int t = 0; t < parts; t++) {
                     int c0 = 0, c1 = o.n;
                     if (tiles) column_block(o.n, t, parts, &c0, &c1);
                     Block b;
                     b.c0 = c0;
                     b.src = dnnl::memory::desc({o.m, o.k}, dt::f32, {o.k, 1});
                     b.dst = dnnl::memory::desc({o.m, c1 - c0}, dt::f32, {o.n, 1});
                     dnnl::memory::desc plain({o.k, c1 - c0}, dt::f32, {o.n, 1});
                     dnnl::memory::desc any({o.k, c1 - c0}, dt::f32, dnnl::memory::format_tag::any);
                     dnnl::matmul::primitive_desc pd(*eng, b.src, any, b.dst);
                     while (std::string(pd.impl_info_str()).rfind("brg", 0) != 0) {
                       if (!pd.next_impl()) {
                         std::fprintf(stderr, "oneDNN has no brgemm matmul for f32 here\n");
                         std::exit(1);
                       }
                     }
                     b.prim = dnnl::matmul(pd);
                     dnnl::memory from(plain, *eng, o.b.data() + c0);
                     b.wei = dnnl::memory(pd.weights_desc(), *eng);
                     dnnl::reorder(from, b.wei).execute(s, from, b.wei);
                     s.wait();
                     blocks->push_back(b);
                   }
                 },
                 [blocks, eng](Operands& o) {
                   auto run = [&](const Block& b) {
                     static thread_local dnnl::stream* s = nullptr;
                     if (s == nullptr) s = new dnnl::stream(*eng);
                     dnnl::memory a(b.src, *eng, o.a.data()), c(b.dst, *eng, o.c.data() + b.c0);
                     b.prim.execute(*s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b.wei}, {DNNL_ARG_DST, c}});
                     s->wait();
                   };
                   if (blocks->size() == 1) {
                     run((*blocks)[0]);
                     return;
                   }
#pragma omp parallel
                   {
                     const size_t t = static_cast<size_t>(omp_get_thread_num());
                     if (t < blocks->size()) run((*blocks)[t]);
                   }
                 },
                 [blocks]() { blocks->clear(); }});
  }
#endif
#ifdef HAVE_XNNPACK
  {
    struct State {
      xnn_operator_t op = nullptr;
      pthreadpool_t pool = nullptr;
    };
    auto s = std::make_shared<State>();
    v.push_back({"xnnpack fc",
                 [s](Operands& o) {
                   if (s->pool == nullptr) s->pool = pthreadpool_create(omp_get_max_threads());
                   std::vector<float> bias(o.n, 0.f);
                   if (xnn_create_fully_connected_nc_f32(o.k, o.n, o.k, o.n, o.b.data(), bias.data(), -INFINITY,
                                                         INFINITY, XNN_FLAG_TRANSPOSE_WEIGHTS,
                                                         &s->op) != xnn_status_success) {
                     std::fprintf(stderr, "xnn_create_fully_connected_nc_f32 failed\n");
                     std::exit(1);
                   }
                 },
                 [s](Operands& o) {
                   xnn_setup_fully_connected_nc_f32(s->op, o.m, o.a.data(), o.c.data(), s->pool);
                   xnn_run_operator(s->op, s->pool);
                 },
                 [s]() {
                   xnn_delete_operator(s->op);
                   s->op = nullptr;
                 }});
  }
#endif
  return v;
}

std::vector<Problem> problems(const std::string& model) {
  const bool base = model == "base";
  const int d = base ? 768 : 1152, inter = base ? 3072 : 4304, tokens = base ? 196 : 256;
  std::vector<Problem> out = {{"reference", 2048, 1152, 4304}};
  for (int batch : {1, 8}) {
    const int m = batch * tokens;
    const std::string what = std::to_string(batch) + (batch == 1 ? " image: " : " images: ");
    out.push_back({what + "q/k/v/out proj", m, d, d});
    out.push_back({what + "fc1", m, d, inter});
    out.push_back({what + "fc2", m, inter, d});
  }
  out.push_back({"8 texts x 64: fc1", 512, d, inter});
  out.push_back({"8 texts x 64: fc2", 512, inter, d});
  return out;
}

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; i++)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model = arg(argc, argv, "--model", "so400m");
  const int rounds = std::max(3, std::atoi(arg(argc, argv, "--rounds", "10")));
  openblas_set_num_threads(1);
#ifdef HAVE_BLIS
  bli_thread_set_num_threads(1);
#endif
#ifdef HAVE_LIBXSMM
  libxsmm_init();
#endif
#ifdef HAVE_XNNPACK
  if (xnn_initialize(nullptr) != xnn_status_success) {
    std::fprintf(stderr, "xnn_initialize failed\n");
    return 1;
  }
#endif
  std::vector<Variant> vs = variants();
  std::printf("model %s, %d threads, %d rounds interleaved, medians in GFLOP/s (x: against openblas tiles)\n",
              model.c_str(), omp_get_max_threads(), rounds);
  std::printf("| shape |");
  for (auto& v : vs) std::printf(" %s |", v.name.c_str());
  std::printf("\n|---|");
  for (size_t i = 0; i < vs.size(); i++) std::printf("---|");
  std::printf("\n");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  for (const Problem& p : problems(model)) {
    Operands o{p.m, p.k, p.n, {}, {}, {}};
    o.a.resize(static_cast<size_t>(p.m) * p.k);
    o.b.resize(static_cast<size_t>(p.k) * p.n);
    for (float& x : o.a) x = uni(rng);
    for (float& x : o.b) x = uni(rng) * 0.05f;
    o.c.assign(static_cast<size_t>(p.m) * p.n, 0.f);
    vs[0].run(o);  // OpenBLAS: the reference every library's product is checked against
    const std::vector<float> expected = o.c;
    for (auto& v : vs) v.prepare(o);
    std::vector<std::vector<double>> seconds(vs.size());
    std::vector<double> worst(vs.size(), 0.0);
    // Each round runs every variant in turn: a pause (pthreadpool's workers spin for a while after a run and took
    // a core from the next library), two untimed runs (wake the threads, warm the caches), then three timed runs
    // back to back, as a model's kernels follow each other. The first round only warms up (JIT, first touch).
    for (int r = 0; r <= rounds; r++) {
      for (size_t i = 0; i < vs.size(); i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        for (int rep = 0; rep < 5; rep++) {
          std::fill(o.c.begin(), o.c.end(), NAN);
          const double t0 = now();
          vs[i].run(o);
          const double t = now() - t0;
          if (r > 0 && rep >= 2) seconds[i].push_back(t);
          if (rep > 0) continue;
          for (size_t j = 0; j < o.c.size(); j++) {
            const double e = std::fabs(static_cast<double>(o.c[j]) - expected[j]);
            worst[i] = std::isnan(e) ? INFINITY : std::max(worst[i], e);
          }
        }
      }
    }
    const double flop = 2.0 * p.m * p.k * p.n;
    const double ref = flop / median(seconds[0]) / 1e9;
    std::printf("| %s [%d,%d]x[%d,%d] |", p.label.c_str(), p.m, p.k, p.k, p.n);
    for (size_t i = 0; i < vs.size(); i++) {
      const double g = flop / median(seconds[i]) / 1e9;
      std::printf(" %.0f", g);
      if (i > 0) std::printf(" (%.2fx)", g / ref);
      if (worst[i] > 1e-3) std::printf(" WRONG (max diff %.1e)", worst[i]);
      std::printf(" |");
    }
    std::printf("\n");
    for (auto& v : vs) v.release();
  }
  return 0;
}
