#include "launcher/commands.h"

namespace kmoe {

const std::vector<Subcommand>& commands_table() {
  static const std::vector<Subcommand> table = {
      info_subcommand(),       generate_subcommand(),    score_subcommand(),  select_experts_subcommand(),
      embed_subcommand(),      select_data_subcommand(), train_subcommand(),  bank_subcommand(),
      dmt_subcommand(),        eval_subcommand(),        panda_subcommand(),        report_subcommand(), suite_subcommand(),
      init_model_subcommand(), run_subcommand(),         demo_subcommand()};
  return table;
}

}  // namespace kmoe
