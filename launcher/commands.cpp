#include "launcher/commands.h"

namespace kmoe {

std::vector<Subcommand> commands_table() {
  return {info_subcommand()};
}

}  // namespace kmoe
