#include "launcher/commands.h"

#include "evaluator/generate.h"
#include "selection/expert_selection.h"

namespace kmoe {

std::vector<Subcommand> commands_table() {
  return {info_subcommand(), generate_subcommand(), select_experts_subcommand()};
}

}  // namespace kmoe
