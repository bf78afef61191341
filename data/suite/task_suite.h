// The generated task suite (data/suite/TASK_SUITE.md): a small synthetic world of short nouns,
// properties, opposites and small numbers; open instruction datasets in skill families;
// target tasks with the answer formats of ARC/PiQA, BoolQ, GSM8K and MBPP; a pretraining
// corpus of plain sentences. Everything comes from one seed through a hand-written PRNG
// (splitmix64), one stream per dataset and task, so the same seed gives the same bytes on
// every standard library and adding a dataset leaves the others unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/text/kshot.h"

namespace kmoe {

struct TaskSuiteOptions {
  uint64_t seed = 0;
  int64_t samples_per_dataset = 400;  // per open dataset
  int64_t kshot = 16;                 // K-shot examples per task
  int64_t test = 100;                 // held-out test examples per task
  int64_t validation = 50;            // examples per task for choosing sizes and hyper-parameters
  int64_t kshot_draws = 1;            // disjoint K-shot sets per task (the K-shot draws of a study)
  int64_t pretrain_docs = 2000;       // documents in pretrain.jsonl
};

// Throws std::invalid_argument naming the option ("--kshot must be >= 1") when out of range.
void task_suite_validate(const TaskSuiteOptions& options);

struct SuiteFamily {
  std::string name;         // "arith"
  std::string description;  // one line, for the manifest
};

struct OpenSample {  // one Alpaca record
  std::string instruction, input, output;
};

struct SuiteDataset {
  std::string name;    // "arith.add"
  std::string family;  // "arith"
  std::vector<OpenSample> samples;
};

struct SuiteTask {
  std::string name;          // "mc", "yesno", "math", "string"
  std::string family;        // the open family it is related to (not identical to)
  std::string answer_type;   // an evaluator/answer_extraction.h format name
  std::string answer_regex;  // for answer_type "regex"; group 1 is the answer
  int64_t n_choices = 0;     // for answer_type "choice"
  // Every example has a rationale; the splits are disjoint. kshot_draws[0] is kshot.jsonl.
  std::vector<std::vector<KshotExample>> kshot_draws;
  std::vector<KshotExample> validation, test;
};

struct TaskSuite {
  TaskSuiteOptions options;
  std::vector<SuiteFamily> families;
  std::vector<SuiteDataset> datasets;
  std::vector<SuiteTask> tasks;
  std::vector<std::string> pretrain;  // document texts
};

// The generator version recorded in the manifest; bump it when any output changes.
inline constexpr int kTaskSuiteVersion = 2;

// Validates the options and generates the whole suite in memory. A task's examples are drawn
// from its own stream in the order test, validation, K-shot draw 0, 1, ..., so the test split
// does not depend on K, the validation size or the number of draws. Throws std::runtime_error
// if a task cannot supply that many distinct examples; no question of a task split occurs in
// another split or in any open dataset.
TaskSuite task_suite_generate(const TaskSuiteOptions& options);

// The suite as files: (path relative to the suite folder, bytes), the manifest suite.json
// last. Paths: open/<family>.<name>.jsonl, tasks/<task>/{kshot,validation,test}.jsonl (K-shot
// draw d >= 1: tasks/<task>/kshot-<d>.jsonl), pretrain.jsonl.
std::vector<std::pair<std::string, std::string>> task_suite_files(const TaskSuite& suite);

// The text a K-shot example is asked as (instruction, then "\n" + input when present),
// used for the disjointness check; open samples are compared the same way.
std::string task_suite_question(const std::string& instruction, const std::string& input);

enum class SuiteWrite { written, unchanged, replaced };

// Writes `files` into DIR.partial/ and renames it to DIR. An existing DIR whose suite.json
// equals the new one and whose files all hash as listed is left alone (unchanged); an
// existing suite folder that differs is an error unless `force` (then replaced); an existing
// DIR without suite.json is never touched. Errors name the path.
SuiteWrite task_suite_write(const std::vector<std::pair<std::string, std::string>>& files, const std::string& dir,
                            bool force);

}  // namespace kmoe
