// See task_suite_command.h. Rank 0 generates and writes; other ranks only wait, so the
// command is harmless under mpirun or srun.
#include "evaluator/task_suite_command.h"

#include <mpi.h>

#include <stdexcept>

#include "evaluator/answer_extraction.h"
#include "launcher/log.h"
#include "launcher/mpi_world.h"

namespace kmoe {

void task_suite_check_gradable(const TaskSuite& suite) {
  for (const auto& task : suite.tasks) {
    AnswerSpec spec;
    spec.format = answer_format_parse(task.answer_type);
    spec.regex = task.answer_regex;
    for (const auto* split : {&task.kshot, &task.test}) {
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

namespace {

int suite_run(const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  TaskSuiteOptions options;
  const int64_t seed = vm["seed"].as<int64_t>();
  if (seed < 0) throw UsageError("kmoe suite: --seed must be >= 0, not " + std::to_string(seed));
  options.seed = static_cast<uint64_t>(seed);
  options.samples_per_dataset = vm["samples-per-dataset"].as<int64_t>();
  options.kshot = vm["kshot"].as<int64_t>();
  options.test = vm["test"].as<int64_t>();
  options.pretrain_docs = vm["pretrain-docs"].as<int64_t>();
  try {
    task_suite_validate(options);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("kmoe suite: ").append(e.what()));
  }
  const std::string dir = vm["output"].as<std::string>();
  if (world.is_root()) {
    const TaskSuite suite = task_suite_generate(options);
    task_suite_check_gradable(suite);
    const auto files = task_suite_files(suite);
    switch (task_suite_write(files, dir, vm["force"].as<bool>())) {
      case SuiteWrite::unchanged:
        log_info("suite: ", dir, " is complete for these options; left as it is");
        break;
      case SuiteWrite::replaced:
        log_info("suite: replaced ", dir);
        [[fallthrough]];
      case SuiteWrite::written:
        log_info("suite: wrote ", dir, ": ", suite.datasets.size(), " open datasets in ", suite.families.size(),
                 " families, ", suite.tasks.size(), " tasks (", options.kshot, "-shot, ", options.test, " test), ",
                 suite.pretrain.size(), " pretraining documents");
        break;
    }
  }
  MPI_Barrier(world.comm);
  return 0;
}

}  // namespace

Subcommand suite_subcommand() {
  return {"suite", "Generate the synthetic task suite: open datasets, K-shot/test tasks, pretraining text",
          [](po::options_description& d, po::positional_options_description&) {
            d.add_options()("output", po::value<std::string>()->required()->value_name("DIR"),
                            "the suite folder (written as DIR.partial, then renamed)")(
                "seed", po::value<int64_t>()->default_value(0), "PRNG seed; the same seed gives the same bytes")(
                "samples-per-dataset", po::value<int64_t>()->default_value(400), "samples in each open dataset")(
                "kshot", po::value<int64_t>()->default_value(16), "K-shot examples per target task")(
                "test", po::value<int64_t>()->default_value(100), "held-out test examples per target task")(
                "pretrain-docs", po::value<int64_t>()->default_value(2000), "documents in pretrain.jsonl")(
                "force", po::bool_switch(), "replace an existing suite made with other options");
          },
          suite_run};
}

}  // namespace kmoe
