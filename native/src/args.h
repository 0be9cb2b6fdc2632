// Argument checking at the Node-API boundary: every kernel validates what JavaScript hands it and throws a JS
// error naming the kernel, the argument and the shapes, never crashing or reading past a buffer.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace siglip2 {

/** An error that becomes a JavaScript Error with this message. */
struct JsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/** The arguments of one call, with the kernel's name and a description of the shapes for error messages. */
class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* kernel, size_t expected);
  napi_env env() const { return env_; }
  const std::string& kernel() const { return kernel_; }
  /** Set once the shapes are known: appended to every later error. */
  void set_shapes(std::string s) { shapes_ = std::move(s); }
  [[noreturn]] void fail(const std::string& what) const;

  int64_t int_at(size_t i, const char* name, int64_t min = 0) const;
  double num_at(size_t i, const char* name) const;
  bool bool_at(size_t i, const char* name) const;
  std::string string_at(size_t i, const char* name) const;
  bool is_null(size_t i) const;
  /** A Float32Array of exactly `count` elements (count 0 is refused: zero-size tensors never reach C++). */
  float* f32_at(size_t i, const char* name, int64_t count) const;
  /** Like f32_at, or nullptr when the argument is null/undefined. */
  float* f32_opt(size_t i, const char* name, int64_t count) const;
  size_t size() const { return argv_.size(); }
  /** A typed array of `type` (float32 or int32) with exactly `count` elements; the same checks as f32_at. */
  void* typed_at(size_t i, const char* name, int64_t count, napi_typedarray_type type) const;
  /** The typed-array type of argument i, or fails naming it when it is no typed array. */
  napi_typedarray_type typed_type(size_t i, const char* name) const;
  /** A JS array of integers >= min (shapes, axes), at most max_len long. */
  std::vector<int64_t> ints_at(size_t i, const char* name, int64_t min, size_t max_len) const;

 private:
  struct TypedInfo {
    napi_typedarray_type type = napi_int8_array;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer = nullptr;
  };
  /** The typed array at `i`, or fails with `not_typed` when it is not one. */
  TypedInfo typed_info(size_t i, const std::string& not_typed) const;

  napi_env env_;
  std::string kernel_;
  std::string shapes_;
  std::vector<napi_value> argv_;
};

/** Wraps a kernel body: C++ exceptions become JS errors. */
napi_value guard(napi_env env, const char* kernel, napi_value (*body)(napi_env, napi_callback_info),
                 napi_callback_info info);

std::string dims_str(const std::vector<int64_t>& d);

napi_value undefined_value(napi_env env);

/** A JS string / number. */
napi_value js_string(napi_env env, const std::string& s);
napi_value js_number(napi_env env, double d);

}  // namespace siglip2
