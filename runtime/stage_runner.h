// Runs one pipeline stage under the stage contract: hash the inputs (rank 0, broadcast),
// skip the stage if its artifact is already complete for the same inputs and options,
// otherwise run it with the provenance the artifact must carry. The stage body writes
// through ArtifactWriter, so a failure or a kill leaves nothing under the final name.
// Before anything runs, rank 0 locks the output (a second process with the same output
// fails at once) and checks that it may be written (output_guard.h).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "data/store/artifact.h"
#include "runtime/mpi_world.h"
#include "runtime/usage_error.h"

namespace kmoe {

struct StageSpec {
  std::string stage;                                  // subcommand name, e.g. "score"
  std::string output;                                 // final artifact path
  std::string folder;                                 // a folder the stage writes as a whole, holding `output` (or "")
  std::vector<std::string> extra_files;               // written beside `output`; the stage is complete only with them
  nlohmann::json options = nlohmann::json::object();  // every option that changes the result
  std::vector<std::pair<std::string, std::string>> inputs;  // role -> file or directory
  bool force = false;                                       // run even if the artifact is complete
};

// "Checkpointed on a signal, requeue me" (75 = EX_TEMPFAIL): the exit status of a stage that
// a signal stopped after it committed a checkpoint; kmoe exits with it and SLURM scripts requeue.
inline constexpr int kExitCheckpointed = 75;

// What a stage function returns: every stage of kmoe (`StageOutcome score_stage(const
// MpiWorld&, const ScoreOptions&)` and the others) is a collective call that either
// throws or returns this.
struct StageOutcome {
  bool skipped = false;              // the artifact was already complete for these inputs and options
  std::string reason;                // why it ran or why it was skipped
  int exit_code = 0;                 // 0, or kExitCheckpointed
  std::vector<std::string> outputs;  // what the stage wrote (or found complete): files and folders
};

// The provenance a run of `spec` would record (input hashes computed on rank 0 and
// broadcast). Collective.
Provenance stage_provenance(const MpiWorld& world, const StageSpec& spec);

// Collective. `body` receives the provenance to give ArtifactWriter and must commit it.
StageOutcome stage_run(const MpiWorld& world, const StageSpec& spec,
                       const std::function<void(const Provenance&)>& body);

}  // namespace kmoe
