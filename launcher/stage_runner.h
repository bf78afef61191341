// Runs one pipeline stage under the stage contract: hash the inputs (rank 0, broadcast),
// skip the stage if its artifact is already complete for the same inputs and options,
// otherwise run it with the provenance the artifact must carry. The stage body writes
// through ArtifactWriter, so a failure or a kill leaves nothing under the final name.
// Before anything runs, rank 0 locks the output (a second process with the same output
// fails at once) and checks that it may be written (output_guard.h).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "data/artifact.h"
#include "launcher/mpi_world.h"

namespace kmoe {

struct StageSpec {
  std::string stage;                                        // subcommand name, e.g. "score"
  std::string output;                                       // final artifact path
  std::string folder;                   // a folder the stage writes as a whole, holding `output` (or "")
  std::vector<std::string> extra_files;  // written beside `output`; the stage is complete only with them
  nlohmann::json options = nlohmann::json::object();        // every option that changes the result
  std::vector<std::pair<std::string, std::string>> inputs;  // role -> file or directory
  bool force = false;                                       // run even if the artifact is complete
};

struct StageOutcome {
  bool skipped = false;
  std::string reason;  // why it ran or why it was skipped
};

// The provenance a run of `spec` would record (input hashes computed on rank 0 and
// broadcast). Collective.
Provenance stage_provenance(const MpiWorld& world, const StageSpec& spec);

// Collective. `body` receives the provenance to give ArtifactWriter and must commit it.
StageOutcome stage_run(const MpiWorld& world, const StageSpec& spec,
                       const std::function<void(const Provenance&)>& body);

}  // namespace kmoe
