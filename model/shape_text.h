// Tensor shapes in error messages, one format everywhere: "[2, 3, 4]" ("[]" for a scalar).
// The model code and the file readers (safetensors, PEFT adapters, moe.h5) name a tensor and
// its shape when one is wrong; they used to format the shape with a copy each.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

namespace kmoe {

std::string shape_text(at::IntArrayRef shape);
std::string shape_text(const std::vector<int64_t>& shape);
// The tensor must be defined.
std::string shape_text(const at::Tensor& t);

}  // namespace kmoe
