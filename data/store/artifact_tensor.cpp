// See artifact_tensor.h.
#include "data/store/artifact_tensor.h"

#include <torch/torch.h>

#include <stdexcept>

namespace kmoe {

void artifact_write_tensor(ArtifactWriter& writer, const std::string& name, const at::Tensor& tensor, StoreType store) {
  const std::vector<int64_t> shape(tensor.sizes().begin(), tensor.sizes().end());
  if (tensor.is_floating_point()) {
    const at::Tensor t = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    writer.write_floats(name, shape, t.data_ptr<float>(), store);
  } else if (tensor.scalar_type() == torch::kInt64 || tensor.scalar_type() == torch::kInt32 ||
             tensor.scalar_type() == torch::kBool) {
    const at::Tensor t = tensor.detach().to(torch::kCPU, torch::kInt64).contiguous();
    writer.write_int64(name, shape, t.data_ptr<int64_t>());
  } else {
    throw std::invalid_argument(writer.partial_path() + ": cannot store tensor '" + name + "' of dtype " +
                                std::string(c10::toString(tensor.scalar_type())));
  }
}

at::Tensor artifact_read_tensor(const ArtifactReader& reader, const std::string& name) {
  const auto shape = reader.shape(name);
  if (reader.is_float(name)) {
    auto values = reader.read_floats(name);
    return torch::from_blob(values.data(), shape, torch::kFloat32).clone();
  }
  auto ints = reader.read_int64(name);  // throws naming the dataset if it is not integer either
  return torch::from_blob(ints.data(), shape, torch::kInt64).clone();
}

}  // namespace kmoe
