// See task_suite_command.h. Rank 0 generates and writes; other ranks only wait, so the
// command is harmless under mpirun or srun.
#include "evaluator/task_suite_command.h"

#include <mpi.h>

#include <stdexcept>

#include "evaluator/answer_extraction.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"

namespace kmoe {

void task_suite_check_gradable(const TaskSuite& suite) {
  for (const auto& task : suite.tasks) {
    AnswerSpec spec;
    spec.format = answer_format_parse(task.answer_type);
    spec.regex = task.answer_regex;
    std::vector<const std::vector<KshotExample>*> splits = {&task.validation, &task.test};
    for (const auto& draw : task.kshot_draws) splits.push_back(&draw);
    for (const auto* split : splits) {
      for (const auto& ex : *split) {
        spec.n_choices = static_cast<int64_t>(ex.choices.size());
        const std::string reply = std::string(ex.rationale).append(" The answer is ").append(ex.answer).append(".");
        const std::string got = answer_extract(spec, reply), want = answer_normalize_gold(spec, ex.answer);
        if (got != want) {
          throw std::logic_error("task suite: task " + task.name + " example " + ex.id + ": '" + reply +
                                 "' extracts as '" + got + "', not '" + want + "'");
        }
      }
    }
  }
}

StageOutcome suite_stage(const MpiWorld& world, const SuiteOptions& o) {
  if (o.output.empty()) throw UsageError("kmoe suite: --output is required");
  TaskSuiteOptions options;
  if (o.seed < 0) throw UsageError("kmoe suite: --seed must be >= 0, not " + std::to_string(o.seed));
  options.seed = static_cast<uint64_t>(o.seed);
  options.samples_per_dataset = o.samples_per_dataset;
  options.kshot = o.kshot;
  options.test = o.test;
  options.validation = o.validation;
  options.kshot_draws = o.kshot_draws;
  options.pretrain_docs = o.pretrain_docs;
  try {
    task_suite_validate(options);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("kmoe suite: ").append(e.what()));
  }
  const std::string& dir = o.output;
  std::string verdict;  // rank 0's, for every rank
  if (world.is_root()) {
    const TaskSuite suite = task_suite_generate(options);
    task_suite_check_gradable(suite);
    const auto files = task_suite_files(suite);
    switch (task_suite_write(files, dir, o.force)) {
      case SuiteWrite::unchanged:
        log_info("suite: ", dir, " is complete for these options; left as it is");
        verdict = "complete";
        break;
      case SuiteWrite::replaced:
        log_info("suite: replaced ", dir);
        verdict = "replaced";
        [[fallthrough]];
      case SuiteWrite::written:
        log_info("suite: wrote ", dir, ": ", suite.datasets.size(), " open datasets in ", suite.families.size(),
                 " families, ", suite.tasks.size(), " tasks (", options.kshot, "-shot x ", options.kshot_draws,
                 " draws, ", options.validation, " validation, ", options.test, " test), ", suite.pretrain.size(),
                 " pretraining documents");
        if (verdict.empty()) verdict = "written";
        break;
    }
  }
  verdict = mpi_bcast_string(world, verdict);  // the other ranks wait here for rank 0
  return {verdict == "complete", verdict, 0, {dir}};
}

}  // namespace kmoe
