// The subcommand table of the kmoe executable. Each stage contributes one
// `<name>_subcommand()`; the table is assembled in commands.cpp.
#pragma once

#include <vector>

#include "launcher/cli.h"

namespace kmoe {

Subcommand info_subcommand();

std::vector<Subcommand> commands_table();

}  // namespace kmoe
