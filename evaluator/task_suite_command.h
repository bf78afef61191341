// `kmoe suite`: writes the generated task suite (data/suite/task_suite.h, data/suite/TASK_SUITE.md).
// It lives with the evaluator because it proves every target task gradable with the
// evaluator's answer extraction before anything is written.
#pragma once

#include <cstdint>
#include <string>

#include "data/suite/task_suite.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// Throws std::logic_error naming the task and example id when "{rationale} The answer is
// {answer}." does not extract back to the example's answer with the task's answer type.
void task_suite_check_gradable(const TaskSuite& suite);

// `kmoe suite`: the options as the user gives them; the defaults are the command line's.
struct SuiteOptions {
  std::string output;                 // the suite folder, written as OUTPUT.partial then renamed (required)
  int64_t seed = 0;                   // PRNG seed (>= 0); the same seed gives the same bytes
  int64_t samples_per_dataset = 400;  // samples in each open dataset
  int64_t kshot = 16;                 // K-shot examples per target task
  int64_t test = 100;                 // held-out test examples per target task
  int64_t validation = 50;            // validation examples per target task (sizes, hyper-parameters)
  int64_t kshot_draws = 1;            // disjoint K-shot sets per target task
  int64_t pretrain_docs = 2000;       // documents in pretrain.jsonl
  bool force = false;                 // replace an existing suite made with other options
};
// Collective: rank 0 generates and writes, every rank returns the same outcome (skipped when
// the folder was already complete for these options; outputs: the folder). Throws
// UsageError "kmoe suite: ..." for options out of range.
StageOutcome suite_stage(const MpiWorld& world, const SuiteOptions& options);

}  // namespace kmoe
