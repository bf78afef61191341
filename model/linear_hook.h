// The one seam between the decoder and everything that adds to its linear layers without
// touching the base weights: a LoRA adapter applied unmerged, a mixture of LoRA experts.
// The decoder computes y = W x (+ bias) and, when a hook is given, adds hook.delta(...).
#pragma once

#include <cstdint>
#include <string>

namespace at {
class Tensor;
}

namespace kmoe {

enum class LinearModule { q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj };
// Every linear layer of a decoder block, in HF order: what PEFT's "all-linear" adapts in a
// LLaMA-family model (the LM head excepted).
inline constexpr LinearModule kAllLinearModules[] = {
    LinearModule::q_proj,    LinearModule::k_proj,  LinearModule::v_proj,   LinearModule::o_proj,
    LinearModule::gate_proj, LinearModule::up_proj, LinearModule::down_proj};

// "q_proj", ... as in HF/PEFT module names; and back (throws std::invalid_argument).
const char* linear_module_name(LinearModule m);
LinearModule linear_module_parse(const std::string& name);

struct LinearHook {
  virtual ~LinearHook() = default;
  // x [batch, seq, in_features] -> delta [batch, seq, out_features] to add to W x, or an
  // undefined tensor when nothing applies to this (layer, module).
  virtual at::Tensor delta(int64_t layer, LinearModule module, const at::Tensor& x) const = 0;
};

}  // namespace kmoe
