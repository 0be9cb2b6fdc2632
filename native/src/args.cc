#include "args.h"

#include <dnnl.hpp>
#include <sstream>

namespace siglip2 {

static napi_valuetype type_of(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  return t;
}

Args::Args(napi_env env, napi_callback_info info, const char* kernel, size_t expected)
    : env_(env), kernel_(kernel) {
  size_t argc = expected;
  argv_.resize(expected);
  napi_get_cb_info(env, info, &argc, argv_.data(), nullptr, nullptr);
  if (argc < expected) {
    for (size_t i = argc; i < expected; i++) napi_get_undefined(env, &argv_[i]);
  }
}

void Args::fail(const std::string& what) const {
  std::string msg = "native " + kernel_ + ": " + what;
  if (!shapes_.empty()) msg += " (" + shapes_ + ")";
  throw JsError(msg);
}

int64_t Args::int_at(size_t i, const char* name, int64_t min) const {
  if (type_of(env_, argv_[i]) != napi_number) fail(std::string(name) + " must be a number");
  double d = 0;
  napi_get_value_double(env_, argv_[i], &d);
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(min)) {
    std::ostringstream s;
    s << name << " must be an integer >= " << min << ", got " << d;
    fail(s.str());
  }
  return static_cast<int64_t>(d);
}

double Args::num_at(size_t i, const char* name) const {
  if (type_of(env_, argv_[i]) != napi_number) fail(std::string(name) + " must be a number");
  double d = 0;
  napi_get_value_double(env_, argv_[i], &d);
  return d;
}

bool Args::bool_at(size_t i, const char* name) const {
  if (type_of(env_, argv_[i]) != napi_boolean) fail(std::string(name) + " must be a boolean");
  bool b = false;
  napi_get_value_bool(env_, argv_[i], &b);
  return b;
}

std::string Args::string_at(size_t i, const char* name) const {
  if (type_of(env_, argv_[i]) != napi_string) fail(std::string(name) + " must be a string");
  size_t len = 0;
  napi_get_value_string_utf8(env_, argv_[i], nullptr, 0, &len);
  std::string out(len, '\0');
  napi_get_value_string_utf8(env_, argv_[i], out.data(), len + 1, &len);
  return out;
}

bool Args::is_null(size_t i) const {
  napi_valuetype t = type_of(env_, argv_[i]);
  return t == napi_null || t == napi_undefined;
}

float* Args::f32_at(size_t i, const char* name, int64_t count) const {
  return static_cast<float*>(typed_at(i, name, count, napi_float32_array));
}

Args::TypedInfo Args::typed_info(size_t i, const std::string& not_typed) const {
  bool is_ta = false;
  napi_is_typedarray(env_, argv_[i], &is_ta);
  if (!is_ta) fail(not_typed);
  TypedInfo t;
  size_t offset = 0;
  napi_get_typedarray_info(env_, argv_[i], &t.type, &t.length, &t.data, &t.buffer, &offset);
  return t;
}

napi_typedarray_type Args::typed_type(size_t i, const char* name) const {
  return typed_info(i, std::string(name) + " must be a typed array").type;
}

std::vector<int64_t> Args::ints_at(size_t i, const char* name, int64_t min, size_t max_len) const {
  bool is_array = false;
  napi_is_array(env_, argv_[i], &is_array);
  if (!is_array) fail(std::string(name) + " must be an array of integers");
  uint32_t n = 0;
  napi_get_array_length(env_, argv_[i], &n);
  if (n > max_len) {
    std::ostringstream s;
    s << name << " has " << n << " entries, at most " << max_len << " are supported";
    fail(s.str());
  }
  std::vector<int64_t> out(n);
  for (uint32_t j = 0; j < n; j++) {
    napi_value e;
    napi_get_element(env_, argv_[i], j, &e);
    double d = 0;
    if (type_of(env_, e) != napi_number || napi_get_value_double(env_, e, &d) != napi_ok ||
        d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(min)) {
      std::ostringstream s;
      s << name << "[" << j << "] must be an integer >= " << min;
      fail(s.str());
    }
    out[j] = static_cast<int64_t>(d);
  }
  return out;
}

void* Args::typed_at(size_t i, const char* name, int64_t count, napi_typedarray_type want) const {
  const char* tname = want == napi_int32_array ? "Int32Array" : "Float32Array";
  const char* dname = want == napi_int32_array ? "int32" : "float32";
  const auto [type, length, data, buffer] = typed_info(i, std::string(name) + " must be a " + tname);
  if (type != want) fail(std::string(name) + " must be a " + tname + " (" + dname + " tensor)");
  bool detached = false;
  napi_is_detached_arraybuffer(env_, buffer, &detached);
  if (detached) fail(std::string(name) + " is backed by a detached ArrayBuffer");
  if (length == 0 || count <= 0) fail(std::string(name) + " is zero-size");
  if (static_cast<int64_t>(length) != count) {
    std::ostringstream s;
    s << name << " has " << length << " elements, expected " << count;
    fail(s.str());
  }
  if (data == nullptr) fail(std::string(name) + " has no data");
  return data;
}

float* Args::f32_opt(size_t i, const char* name, int64_t count) const {
  if (is_null(i)) return nullptr;
  return f32_at(i, name, count);
}

napi_value guard(napi_env env, const char* kernel, napi_value (*body)(napi_env, napi_callback_info),
                 napi_callback_info info) {
  try {
    return body(env, info);
  } catch (const JsError& e) {
    napi_throw_error(env, "ERR_SIGLIP2_NATIVE", e.what());
  } catch (const dnnl::error& e) {
    std::string msg = std::string("native ") + kernel + ": oneDNN error: " + e.what();
    napi_throw_error(env, "ERR_SIGLIP2_NATIVE", msg.c_str());
  } catch (const std::bad_alloc&) {
    std::string msg = std::string("native ") + kernel + ": out of memory";
    napi_throw_error(env, "ERR_SIGLIP2_NATIVE", msg.c_str());
  } catch (const std::exception& e) {
    std::string msg = std::string("native ") + kernel + ": " + e.what();
    napi_throw_error(env, "ERR_SIGLIP2_NATIVE", msg.c_str());
  }
  return nullptr;
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < d.size(); i++) s << (i ? "," : "") << d[i];
  s << "]";
  return s.str();
}

napi_value js_string(napi_env env, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.c_str(), s.size(), &v);
  return v;
}

napi_value js_number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

}  // namespace siglip2
