// See shape_text.h.
#include "model/shape_text.h"

namespace kmoe {

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string shape_text(const std::vector<int64_t>& shape) { return shape_text(at::IntArrayRef(shape)); }

std::string shape_text(const at::Tensor& t) { return shape_text(t.sizes()); }

}  // namespace kmoe
