// `kmoe run CONFIG`: the pipeline driver (METHOD.md §1, the data flow in ARCHITECTURE.md).
// It holds no method code: each stage is that stage's own subcommand, run in-process on an
// argument vector the driver builds (`--config CONFIG` plus the wiring: artifact paths inside
// the run directory, the experts chosen in experts.h5), parsed with cli_parse. So the user's
// [score], [train], ... sections configure the stages, and the wiring, being command-line
// arguments, wins. Skipping stays each stage's own business (stage_run compares provenance);
// the driver only forces stages (--force, --from, --only) and records what happened in
// RUN_DIR/run.json.
#pragma once

#include <functional>
#include <vector>

#include "launcher/cli.h"

namespace kmoe {

// `table` gives the subcommands the stages are looked up in (the executable's table, which
// holds `run` itself).
Subcommand run_subcommand(std::function<std::vector<Subcommand>()> table);

}  // namespace kmoe
