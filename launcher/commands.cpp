#include "launcher/commands.h"

#include "evaluator/bank_scoring.h"
#include "evaluator/generate.h"
#include "selection/embedding.h"
#include "selection/expert_selection.h"
#include "selection/sim_div.h"
#include "trainer/train_command.h"

namespace kmoe {

// In pipeline order, after the two that are not stages.
std::vector<Subcommand> commands_table() {
  return {info_subcommand(),           generate_subcommand(), score_subcommand(),
          select_experts_subcommand(), embed_subcommand(),    select_data_subcommand(),
          train_subcommand(),          bank_subcommand()};
}

}  // namespace kmoe
