#include "launcher/commands.h"

#include "evaluator/bank_scoring.h"
#include "evaluator/demo_command.h"
#include "evaluator/eval_command.h"
#include "evaluator/generate.h"
#include "evaluator/report.h"
#include "evaluator/task_suite_command.h"
#include "launcher/pipeline.h"
#include "selection/embedding.h"
#include "selection/expert_selection.h"
#include "selection/sim_div.h"
#include "trainer/init_model_command.h"
#include "trainer/train_command.h"

namespace kmoe {

// In pipeline order, after the two that are not stages.
std::vector<Subcommand> commands_table() {
  return {info_subcommand(),
          generate_subcommand(),
          score_subcommand(),
          select_experts_subcommand(),
          embed_subcommand(),
          select_data_subcommand(),
          train_subcommand(),
          bank_subcommand(),
          eval_subcommand(),
          report_subcommand(),
          suite_subcommand(),
          init_model_subcommand(),
          run_subcommand(commands_table),
          demo_subcommand(commands_table)};
}

}  // namespace kmoe
