// `kmoe run CONFIG`: the pipeline driver (METHOD.md §1; the data flow in docs/ARCHITECTURE.md).
// It holds no method code: each stage is its stage function, called in-process with that
// stage's options struct, read from the stage's section of the config (and its top level)
// by the CLI layer; the driver sets only the wiring: artifact paths inside the run directory
// and the experts chosen in experts.h5. Skipping stays each stage's own business (stage_run
// compares provenance, and the StageOutcome says whether it skipped); the driver only forces
// stages (--force, --from, --only) and records what happened in RUN_DIR/run.json.
#pragma once

#include <map>
#include <string>

#include "evaluator/bank_scoring.h"
#include "evaluator/eval_command.h"
#include "evaluator/panda.h"
#include "evaluator/report.h"
#include "launcher/cli.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"
#include "selection/embedding.h"
#include "selection/expert_selection.h"
#include "selection/sim_div.h"
#include "trainer/train_command.h"

namespace kmoe {

struct PipelineOptions {
  std::string run_dir;              // every artifact, run.json and the report (required)
  bool bank_build = false;          // build the LoRA bank (RUN_DIR/bank) from embed's corpus first
  std::string from, only, to;       // force STAGE and the later ones / run (forced) just STAGE / stop after STAGE
  bool force = false;               // force every stage
  bool dry_run = false;             // print the plan and return
  std::string config, config_text;  // the user's config file and its text, recorded in run.json ("" if none)
  // Each stage's options; the driver overwrites the wiring fields (outputs, inputs made by
  // earlier stages, the experts, force).
  BankBuildOptions bank;
  ScoreOptions score;
  SelectExpertsOptions select_experts;
  EmbedOptions embed;
  SelectDataOptions select_data;
  TrainOptions train;
  bool soft_prompt = false;   // the config has [train.prompt]: the soft-prompt stage runs (ProMoT)
  TrainOptions prompt_train;  // its options ([train.prompt] and the top level)
  EvalOptions eval;
  bool panda = false;         // the config has [panda]: panda-learn and eval-panda run (PANDA)
  PandaLearnOptions panda_learn;  // [panda] and the top level
  EvalOptions panda_eval;         // [eval.panda] and the top level
  ReportOptions report;
  // Stage name -> why its section of the config cannot be used (a required key missing, a bad
  // value): an error when that stage is selected, before any stage runs.
  std::map<std::string, std::string> section_errors;
};

// Collective. Returns the outcome of the last stage it ran, with exit_code
// kExitCheckpointed when a stage checkpointed on a signal (the run stops there); throws on a
// failure after recording it in run.json. Throws UsageError for --from/--only/--to naming
// no stage, and for --only when the stage's inputs do not exist.
StageOutcome pipeline_run(const MpiWorld& world, const PipelineOptions& options);

// The options of `kmoe run` as its CLI gives them: each stage's section of CONFIG parsed by
// the CLI layer (every section is read before any stage runs, so a bad key in [train] is
// an error now, not after hours of scoring).
PipelineOptions pipeline_options(const po::variables_map& vm);

}  // namespace kmoe
