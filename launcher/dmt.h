// `kmoe dmt`: DMT's study as one resumable command (METHOD.md §3, arXiv 2310.05492). It
// trains, each as a `kmoe train` stage in OUTPUT_DIR (skipped when complete, resumed from its
// checkpoint after a kill):
//   special/        stage 1: the specialised data alone ("specialised only")
//   general/        the general data alone
//   mixed/          both in one stage
//   sequential/     stage 2 from special/ on the general data (k = 0)
//   dmt-k<a>_<b>/   DMT: stage 2 from special/ on the general data plus a share k of the
//                   specialised data (FILE:k), for every k of --k
// Stage 2 continues from stage 1's weights (mode lora: --init-adapter special/; mode full: the
// HF folder special/ as the model) with a fresh optimizer, as the paper does. OUTPUT_DIR/dmt.json
// lists every run with its data and start. Evaluation is left to `kmoe eval` on the outputs.
#pragma once

#include <string>
#include <vector>

#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"
#include "trainer/train_command.h"

namespace kmoe {

struct DmtOptions {
  std::string mode = "lora";                                        // lora or full
  std::string model;                                                // base model: HF folder or .gguf (required)
  std::vector<std::string> special;                                 // the specialised data, JSONL (required)
  std::vector<std::string> general;                                 // the general data, JSONL (required)
  std::string output_dir;                                           // every run's output and dmt.json (required)
  std::vector<std::string> k{"1", "1/4", "1/16", "1/64", "1/256"};  // shares of the specialised data in stage 2
  bool baselines = true;                                            // also general/, mixed/ and sequential/
  bool force = false;                                               // retrain every run
  TrainingFlags training;  // every run's (each run restarts the optimizer and schedule)
};

// The run directory name of share k: "1/16" -> "dmt-k1_16", "0.5" -> "dmt-k0.5".
std::string dmt_run_name(const std::string& k);

// Collective. Throws UsageError for a bad mode, a k that is not a share in (0, 1], or a
// missing required option; returns the first non-zero exit (e.g. 75 after a checkpoint on a
// signal: run the same command again to resume).
StageOutcome dmt_stage(const MpiWorld& world, const DmtOptions& options);

}  // namespace kmoe
