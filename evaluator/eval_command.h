// `kmoe eval` (METHOD.md §1.5): task metrics of several models on a test JSONL in one run:
// the base, PEFT adapters and trained MoE files. Examples go through scoring_prepare /
// scoring_run, so accuracy is exactly `kmoe score`'s /acc for the same model and examples;
// on top come the log-likelihood accuracies for multiple choice and macro-F1 for
// classification formats. Units = model × chunk of examples in a WorkQueue, journalled, so
// a killed eval resumes; the results do not depend on np (see bank_scoring.h).
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "evaluator/bank_scoring.h"  // ScoringFlags
#include "evaluator/panda.h"         // InsightFlags
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

enum class EvalModelKind { base, adapter, moe };

struct EvalModel {
  std::string name;  // the row name in eval.h5
  std::string path;  // "" for the base
  EvalModelKind kind = EvalModelKind::base;
};

// The rows of an eval, in order: "base" (when `base`), then each --adapters entry (a PEFT
// folder, named by the folder; a folder of adapters or a list file expands as for `kmoe
// score --bank`), then each --moe entry ("NAME=FILE", or FILE named by its stem). Throws
// UsageError when no model is given or a name repeats.
std::vector<EvalModel> eval_models(bool base, const std::vector<std::string>& adapters,
                                   const std::vector<std::string>& moes);

// The summary of an eval.h5: {"task", "samples", "answer_format", "models": [{"name", "path",
// "accuracy", "macro_f1", "acc_ll", "acc_ll_norm"}]}, NaN as null.
nlohmann::json eval_summary(const std::string& eval_h5);
// The same as a text table: model, accuracy, macro-F1 (and acc_ll when present), "-" for NaN.
std::string eval_table(const nlohmann::json& summary);

// `kmoe eval`: the options as the user gives them; the defaults are the command line's.
struct EvalOptions {
  std::string model;                  // base model: HF folder or .gguf (required)
  std::string test;                   // test examples, JSONL in the K-shot format (required)
  bool base = false;                  // evaluate the base model (row "base")
  std::vector<std::string> adapters;  // PEFT adapter folders; a folder of adapters or a list file adds each
  std::vector<std::string> moe;       // moe.h5 files, "FILE" or "NAME=FILE"
  std::string output = "eval.h5";     // the eval artifact
  std::string task;                   // task name recorded ("": the test file stem)
  bool json = false;                  // print the summary as JSON instead of a table
  bool force = false;                 // rerun even if the artifact is complete
  ScoringFlags scoring;               // prompt and answer formats, reply length, batching, device
  InsightFlags insights;              // PANDA: put the nearest insights of a pool before each question
};
// Collective. Writes `output` (eval.h5) unless it is complete for these inputs and options,
// then prints the summary (rank 0) either way. Throws UsageError "kmoe eval: ..." for
// options that cannot run.
StageOutcome eval_stage(const MpiWorld& world, const EvalOptions& options);

}  // namespace kmoe
