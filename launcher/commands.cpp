#include "launcher/commands.h"

#include "evaluator/generate.h"
#include "selection/embedding.h"
#include "selection/sim_div.h"

namespace kmoe {

std::vector<Subcommand> commands_table() {
  return {info_subcommand(), generate_subcommand(), embed_subcommand(), select_data_subcommand()};
}

}  // namespace kmoe
