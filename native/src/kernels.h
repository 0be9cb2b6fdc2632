// The Node-API entry points of each kernel family (one file each).
#pragma once
#include <node_api.h>

namespace siglip2 {
napi_value Matmul(napi_env env, napi_callback_info info);
napi_value MatmulImpl(napi_env env, napi_callback_info info);
napi_value LayerNorm(napi_env env, napi_callback_info info);
napi_value LayerNormBackward(napi_env env, napi_callback_info info);
napi_value GeluTanh(napi_env env, napi_callback_info info);
napi_value GeluTanhBackward(napi_env env, napi_callback_info info);
napi_value Softmax(napi_env env, napi_callback_info info);
napi_value Attention(napi_env env, napi_callback_info info);
napi_value AttentionBackward(napi_env env, napi_callback_info info);
napi_value EncoderLayer(napi_env env, napi_callback_info info);
napi_value BenchSgemm(napi_env env, napi_callback_info info);
// mmap.cc: weight files mapped into external ArrayBuffers.
napi_value MapFiles(napi_env env, napi_callback_info info);
napi_value IsMapped(napi_env env, napi_callback_info info);
napi_value ReleasePages(napi_env env, napi_callback_info info);
napi_value MappedStats(napi_env env, napi_callback_info info);
// elementwise, transpose, reductions, optimizer (transpose.cc, binary.cc, reduce.cc, adamw.cc)
napi_value Transpose(napi_env env, napi_callback_info info);
napi_value Binary(napi_env env, napi_callback_info info);
napi_value ReduceSum(napi_env env, napi_callback_info info);
napi_value AdamW(napi_env env, napi_callback_info info);
napi_value GemmChoices(napi_env env, napi_callback_info info);
napi_value ClearGemmChoices(napi_env env, napi_callback_info info);
napi_value DefaultGemmFor(napi_env env, napi_callback_info info);
}  // namespace siglip2
