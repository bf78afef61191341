#include "launcher/commands.h"

#include "evaluator/bank_scoring.h"
#include "evaluator/generate.h"
#include "selection/expert_selection.h"

namespace kmoe {

std::vector<Subcommand> commands_table() {
  return {info_subcommand(), generate_subcommand(), score_subcommand(), select_experts_subcommand()};
}

}  // namespace kmoe
