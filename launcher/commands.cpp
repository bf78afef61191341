#include "launcher/commands.h"

#include "evaluator/generate.h"

namespace kmoe {

std::vector<Subcommand> commands_table() {
  return {info_subcommand(), generate_subcommand()};
}

}  // namespace kmoe
