// See linear_hook.h.
#include "model/linear_hook.h"

#include <stdexcept>

namespace kmoe {

const char* linear_module_name(LinearModule m) {
  switch (m) {
    case LinearModule::q_proj:
      return "q_proj";
    case LinearModule::k_proj:
      return "k_proj";
    case LinearModule::v_proj:
      return "v_proj";
    case LinearModule::o_proj:
      return "o_proj";
    case LinearModule::gate_proj:
      return "gate_proj";
    case LinearModule::up_proj:
      return "up_proj";
    case LinearModule::down_proj:
      return "down_proj";
  }
  return "?";
}

LinearModule linear_module_parse(const std::string& name) {
  for (auto m : {LinearModule::q_proj, LinearModule::k_proj, LinearModule::v_proj, LinearModule::o_proj,
                 LinearModule::gate_proj, LinearModule::up_proj, LinearModule::down_proj}) {
    if (name == linear_module_name(m)) return m;
  }
  throw std::invalid_argument("unknown linear module '" + name +
                              "' (valid: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
}

}  // namespace kmoe
