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
napi_value BenchSgemm(napi_env env, napi_callback_info info);
napi_value GemmChoices(napi_env env, napi_callback_info info);
napi_value ClearGemmChoices(napi_env env, napi_callback_info info);
}  // namespace siglip2
