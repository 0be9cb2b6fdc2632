// Scratch buffers the kernels keep between calls (the attention's scores, the encoder layer's intermediates).
#include "ops.h"

namespace siglip2 {

float* scratch(std::vector<float>& buf, size_t floats) {
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

void keep_at_most(std::vector<float>& buf, size_t keep_bytes) {
  if (buf.capacity() * sizeof(float) > keep_bytes) std::vector<float>().swap(buf);
}

}  // namespace siglip2
