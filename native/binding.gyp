{
  "variables": {
    "onednn_prefix%": ""
  },
  "targets": [
    {
      "target_name": "siglip2_native",
      "sources": [
        "src/addon.cc",
        "src/args.cc",
        "src/dnnl_context.cc",
        "src/matmul.cc",
        "src/layer_norm.cc",
        "src/eltwise.cc",
        "src/vec_math.cc",
        "src/softmax.cc",
        "src/attention.cc",
        "src/encoder_layer.cc",
        "src/scratch.cc",
        "src/team.cc",
        "src/bench.cc",
        "src/transpose.cc",
        "src/binary.cc",
        "src/reduce.cc",
        "src/adamw.cc",
        "src/mmap.cc",
        "src/blas_matmul.cc",
        "src/gemm_choice.cc"
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fopenmp", "-Wall", "-Wextra"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-lopenblas"],
      "conditions": [
        ["onednn_prefix==''", { "libraries": ["-ldnnl"] }],
        ["onednn_prefix!=''", {
          "include_dirs": ["<(onednn_prefix)/include"],
          "libraries": ["<(onednn_prefix)/lib/libdnnl.a"]
        }],
        ["OS=='linux' and target_arch=='x64'", { "libraries": ["-lmvec"] }]
      ],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
