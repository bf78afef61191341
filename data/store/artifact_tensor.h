// Tensors in and out of artifacts. Kept apart from artifact.h so that code which only
// stores plain arrays does not pay for libtorch's headers.
#pragma once

#include <string>

#include "data/store/artifact.h"

namespace at {
class Tensor;
}

namespace kmoe {

// Collective like ArtifactWriter::write_floats. float tensors (any float dtype, any
// device) are stored as `store`; int64/int32/bool tensors as int64. Rank 0's tensor is
// written; every rank passes a tensor of the same shape.
void artifact_write_tensor(ArtifactWriter& writer, const std::string& name, const at::Tensor& tensor,
                           StoreType store = StoreType::f32);
// float32 for float datasets (f16 on disk is widened), int64 for integer datasets.
at::Tensor artifact_read_tensor(const ArtifactReader& reader, const std::string& name);

}  // namespace kmoe
