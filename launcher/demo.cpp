// See demo.h. Every rank walks the same steps (each stage is collective); what decides a step
// (the chosen experts, the best adapter) is read from artifacts, which every rank can read.
// Method and baselines share one budget: the baselines' MoE trainings take the pipeline's own
// TrainOptions, so they differ from the full method only in the experts or the data.
#include "launcher/demo.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "data/store/artifact.h"
#include "data/text/json_file.h"
#include "evaluator/demo_table.h"
#include "evaluator/eval_command.h"
#include "evaluator/task_suite_command.h"
#include "launcher/commands.h"
#include "launcher/pipeline.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/version.h"
#include "trainer/init_model_command.h"
#include "trainer/train_command.h"

namespace kmoe {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The rows of the table, in the paper's order.
const std::vector<std::pair<std::string, std::string>> kMethods = {
    {"base", "base model"},
    {"random_moe", "MoE of 4 random adapters"},
    {"best_adapter", "best single adapter"},
    {"best_adapter_kshot", "best adapter + K-shot fine-tuning"},
    {"moe_kshot", "MoE of selected experts, K-shot data only"},
    {"full", "full method (K-shot MoE)"}};

std::string path_in(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

// Writes `text` to PATH.partial and renames it onto PATH (rank 0 only).
void text_write(const MpiWorld& world, const std::string& path, const std::string& text) {
  if (world.is_root()) {
    const std::string partial = path + ".partial";
    {
      std::ofstream out(partial, std::ios::binary);
      out << text;
      out.close();
      if (!out) throw std::runtime_error(partial + ": write failed");
    }
    fs::rename(partial, path);
  }
  mpi_check(MPI_Barrier(world.comm), "demo: barrier");
}

// Runs the stages and records how long each step took.
class StepRunner {
 public:
  void run(const std::string& step, const std::function<StageOutcome()>& stage) {
    log_info("demo: ", step);
    const auto t0 = std::chrono::steady_clock::now();
    const StageOutcome outcome = stage();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (outcome.exit_code != 0) {
      throw std::runtime_error("demo: step " + step + " stopped with exit code " + std::to_string(outcome.exit_code) +
                               "; run kmoe demo again to resume");
    }
    seconds_.push_back({{"step", step}, {"seconds", std::round(seconds * 10) / 10}});
    log_info("demo: ", step, ": done in ", std::round(seconds * 10) / 10, " s");
  }
  const json& seconds() const { return seconds_; }

 private:
  json seconds_ = json::array();
};

// The task's entry in suite.json (answer_type, answer_regex, ...).
json suite_task(const json& suite, const std::string& suite_json, const std::string& task) {
  std::vector<std::string> names;
  for (const auto& t : suite.at("tasks")) {
    if (t.at("name") == task) return t;
    names.push_back(t.at("name"));
  }
  std::string list;
  for (const auto& n : names) list.append(list.empty() ? "" : ", ").append(n);
  throw UsageError("kmoe demo: --tasks: " + suite_json + " has no task '" + task + "' (tasks: " + list + ")");
}

// The pipeline on one task, with the profile's sizes: what `kmoe run` would read from a
// config with these keys at the top level (model, kshot, test, corpus, prompt-format,
// answer-format, answer-regex, max-new-tokens, threads) and in the stages' sections.
PipelineOptions pipeline_for(const DemoOptions& o, const json& task, const std::string& base, const std::string& bank,
                             const std::vector<std::string>& corpus) {
  const DemoProfile& p = o.profile;
  const std::string suite = path_in(o.work_dir, "suite");
  const std::string name = task.at("name");
  const std::string kshot = path_in(suite, task.at("kshot").at("file").get<std::string>());
  ScoringFlags scoring;
  scoring.prompt_format = "chat";
  scoring.answer_format = task.at("answer_type").get<std::string>();
  if (task.contains("answer_regex")) scoring.answer_regex = task.at("answer_regex").get<std::string>();
  scoring.max_new_tokens = p.max_new_tokens;
  scoring.threads = o.threads;

  PipelineOptions r;
  r.run_dir = path_in(path_in(o.work_dir, "runs"), name);
  r.score.model = base;
  r.score.kshot = kshot;
  r.score.bank = bank;
  r.score.scoring = scoring;
  r.select_experts.m = p.m;
  r.select_experts.n = p.n;
  r.embed.corpus = corpus;
  r.embed.kshot = kshot;
  r.embed.encoder = "decoder";
  r.embed.encoder_model = base;
  r.embed.block_rows = p.embed_block_rows;
  r.embed.threads = o.threads;
  r.select_data.corpus = corpus;
  r.select_data.kshot = kshot;
  r.select_data.c = p.c;
  r.select_data.tau = p.tau;
  r.train.model = base;
  r.train.training.prompt_format = "chat";
  r.train.training.epochs = p.moe_epochs;
  r.train.training.global_batch = p.moe_batch;
  r.train.training.micro_batch = std::min<int64_t>(p.moe_batch, 8);
  r.train.training.lr = p.moe_lr;
  r.train.training.max_len = p.max_len;
  r.train.training.seed = o.seed;
  r.train.training.threads = o.threads;
  r.eval.model = base;
  r.eval.test = path_in(suite, task.at("test").at("file").get<std::string>());
  r.eval.task = name;
  r.eval.scoring = scoring;
  return r;
}

// RUN_DIR/run.ini: the same pipeline as a config for the user, so that `kmoe run run.ini`
// (e.g. slurm/run.sbatch) re-runs this task's pipeline alone. kmoe does not read it: the demo
// calls the stages with pipeline_for()'s structs. The two must agree, or `kmoe run run.ini`
// would redo every stage: slurm_pipeline_test re-runs it and checks that the early stages skip.
std::string run_config(const DemoOptions& o, const json& task, const std::string& base, const std::string& bank,
                       const std::vector<std::string>& corpus) {
  const DemoProfile& p = o.profile;
  const std::string suite = path_in(o.work_dir, "suite");
  const std::string name = task.at("name");
  std::ostringstream s;
  s << "# kmoe demo, profile " << p.name << ": the pipeline on task " << name << "\n";
  s << "model = " << base << "\n";
  s << "kshot = " << path_in(suite, task.at("kshot").at("file").get<std::string>()) << "\n";
  s << "test = " << path_in(suite, task.at("test").at("file").get<std::string>()) << "\n";
  s << "corpus =";
  for (const auto& c : corpus) s << " " << c;
  s << "\n";
  s << "prompt-format = chat\n";
  s << "answer-format = " << task.at("answer_type").get<std::string>() << "\n";
  if (task.contains("answer_regex")) s << "answer-regex = " << task.at("answer_regex").get<std::string>() << "\n";
  s << "max-new-tokens = " << p.max_new_tokens << "\n";
  if (o.threads > 0) s << "threads = " << o.threads << "\n";
  s << "[score]\nbank = " << bank << "\n";
  s << "[select-experts]\nm = " << p.m << "\nn = " << p.n << "\n";
  s << "[embed]\nencoder = decoder\nencoder-model = " << base << "\nblock-rows = " << p.embed_block_rows << "\n";
  s << "[select-data]\nc = " << p.c << "\ntau = " << p.tau << "\n";
  s << "[eval]\ntask = " << name << "\n";
  s << "[train]\nprompt-format = chat\nepochs = " << p.moe_epochs << "\nglobal-batch = " << p.moe_batch
    << "\nmicro-batch = " << std::min<int64_t>(p.moe_batch, 8) << "\nlr = " << p.moe_lr << "\nmax-len = " << p.max_len
    << "\nseed = " << o.seed << "\n";
  // So that `kmoe run run.ini` (e.g. slurm/run.sbatch) works on this config alone.
  s << "[run]\nrun-dir = " << path_in(path_in(o.work_dir, "runs"), name) << "\n";
  return s.str();
}

// `n` of `items` chosen by a seeded partial Fisher-Yates (splitmix64, so the choice is the same
// with every standard library).
std::vector<std::string> seeded_choice(std::vector<std::string> items, size_t n, uint64_t seed) {
  uint64_t state = seed;
  const auto next = [&] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  n = std::min(n, items.size());
  for (size_t i = 0; i < n; ++i) std::swap(items[i], items[i + next() % (items.size() - i)]);
  items.resize(n);
  return items;
}

// FNV-1a: a task's stream of the seed, the same with every standard library.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// accuracy (%) of model `name` in eval.h5's summary; NaN when absent.
double accuracy_of(const json& summary, const std::string& name) {
  for (const auto& m : summary.at("models"))
    if (m.at("name") == name && m.at("accuracy").is_number()) return 100.0 * m.at("accuracy").get<double>();
  return std::numeric_limits<double>::quiet_NaN();
}

// One task: the pipeline (full method), then the baselines. Returns the column of the table
// (one accuracy per kMethods row) and the names of the adapters behind it.
std::vector<double> demo_task(StepRunner& steps, const DemoOptions& o, const json& task, const std::string& base,
                              const std::string& bank, const std::vector<std::string>& corpus,
                              const std::vector<std::string>& bank_paths, json& details) {
  const MpiWorld& world = mpi_world();
  const DemoProfile& p = o.profile;
  const std::string name = task.at("name");
  const PipelineOptions pipeline = pipeline_for(o, task, base, bank, corpus);
  const std::string& run_dir = pipeline.run_dir;
  const std::string& kshot = pipeline.score.kshot;
  if (world.is_root()) fs::create_directories(run_dir);
  text_write(world, path_in(run_dir, "run.ini"), run_config(o, task, base, bank, corpus));

  // (f) the full method: score -> select-experts -> embed -> select-data -> train -> eval
  steps.run(name + "/pipeline", [&] { return pipeline_run(world, pipeline); });
  const auto chosen = ArtifactReader(path_in(run_dir, "experts.h5")).read_strings("chosen_paths");
  const std::string selected = path_in(run_dir, "selected.jsonl");

  // (b) 4 random adapters, trained as the full method is (same data, same training options)
  const auto random = seeded_choice(bank_paths, 4, o.seed ^ name_hash(name));
  TrainOptions moe = pipeline.train;
  moe.mode = "moe";
  moe.output = path_in(run_dir, "moe_random.h5");
  moe.data = {selected};
  moe.adapters = random;
  steps.run(name + "/train-random-moe", [&] { return train_stage(world, moe); });

  // (e) the selected experts, trained on the K-shot set alone
  moe.output = path_in(run_dir, "moe_kshot.h5");
  moe.data = {kshot};
  moe.adapters = chosen;
  steps.run(name + "/train-kshot-moe", [&] { return train_stage(world, moe); });

  // (a), (c): the base and every adapter of the bank on the test split
  const std::string eval_bank = path_in(run_dir, "eval_bank.h5");
  EvalOptions eval = pipeline.eval;
  eval.base = true;
  eval.adapters = {bank};
  eval.output = eval_bank;
  steps.run(name + "/eval-bank", [&] { return eval_stage(world, eval); });
  const json bank_summary = eval_summary(eval_bank);
  std::string best, best_path;
  double best_acc = -1;
  for (const auto& m : bank_summary.at("models")) {
    if (m.at("name") == "base" || !m.at("accuracy").is_number()) continue;
    if (m.at("accuracy").get<double>() > best_acc) {  // the first of equals, in bank order
      best_acc = m.at("accuracy").get<double>();
      best = m.at("name");
      best_path = m.at("path");
    }
  }
  if (best.empty()) throw std::runtime_error("demo: " + eval_bank + ": no adapter has an accuracy");

  // (d) the best adapter fine-tuned on the K-shot set
  const std::string kshot_lora = path_in(run_dir, "best_adapter_kshot");
  TrainOptions lora;
  lora.mode = "lora";
  lora.model = base;
  lora.init_adapter = best_path;
  lora.data = {kshot};
  lora.output = kshot_lora;
  lora.training.prompt_format = "chat";
  lora.training.epochs = p.kshot_lora_epochs;
  lora.training.global_batch = std::min<int64_t>(p.kshot, 8);
  lora.training.micro_batch = std::min<int64_t>(p.kshot, 8);
  lora.training.lr = p.kshot_lora_lr;
  lora.training.max_len = p.max_len;
  lora.training.seed = o.seed;
  lora.training.lora_dropout = 0;
  steps.run(name + "/train-best-adapter-kshot", [&] { return train_stage(world, lora); });

  const std::string eval_baselines = path_in(run_dir, "eval_baselines.h5");
  eval = pipeline.eval;
  eval.adapters = {kshot_lora};
  eval.moe = {"random_moe=" + path_in(run_dir, "moe_random.h5"), "moe_kshot=" + path_in(run_dir, "moe_kshot.h5")};
  eval.output = eval_baselines;
  steps.run(name + "/eval-baselines", [&] { return eval_stage(world, eval); });
  const json baselines = eval_summary(eval_baselines);
  const json full = eval_summary(path_in(run_dir, "eval.h5"));

  details[name] = {{"run_dir", run_dir},        {"answer_format", task.at("answer_type")},
                   {"chosen_experts", chosen},  {"random_experts", random},
                   {"best_adapter", best_path}, {"bank_accuracy", bank_summary.at("models")}};
  return {accuracy_of(bank_summary, "base"),   accuracy_of(baselines, "random_moe"),
          accuracy_of(bank_summary, best),     accuracy_of(baselines, "best_adapter_kshot"),
          accuracy_of(baselines, "moe_kshot"), accuracy_of(full, "moe")};
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string t; std::getline(in, t, ',');)
    if (!t.empty()) out.push_back(t);
  return out;
}

}  // namespace

// Long (~120 lines) because it is the demo's script, in order: suite, base model, pretraining,
// bank, each task's pipeline and baselines, then the table; each step is a few lines of
// options, and reading them in sequence is the point.
StageOutcome demo_run(const MpiWorld& world, const DemoOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  if (o.tasks.empty()) throw UsageError("kmoe demo: --tasks names no task");
  const DemoProfile& p = o.profile;
  if (world.is_root()) fs::create_directories(o.work_dir);
  mpi_check(MPI_Barrier(world.comm), "demo: barrier");
  StepRunner steps;

  SuiteOptions suite_options;
  suite_options.output = path_in(o.work_dir, "suite");
  suite_options.seed = static_cast<int64_t>(o.seed);
  suite_options.samples_per_dataset = p.samples_per_dataset;
  suite_options.kshot = p.kshot;
  suite_options.test = p.test;
  suite_options.pretrain_docs = p.pretrain_docs;
  const std::string& suite = suite_options.output;
  steps.run("suite", [&] { return suite_stage(world, suite_options); });
  const json manifest = json_file_read(path_in(suite, "suite.json"));
  std::vector<json> tasks;
  for (const auto& t : o.tasks) tasks.push_back(suite_task(manifest, path_in(suite, "suite.json"), t));
  std::vector<std::string> corpus;
  for (const auto& d : manifest.at("datasets")) corpus.push_back(path_in(suite, d.at("file").get<std::string>()));

  InitModelOptions init;
  init.output = path_in(o.work_dir, "init");
  init.hidden = p.hidden;
  init.layers = p.layers;
  init.heads = p.heads;
  init.kv_heads = p.kv_heads;
  init.intermediate = p.intermediate;
  init.max_position = std::max<int64_t>(p.max_len, 256);
  init.seed = o.seed;
  steps.run("init-model", [&] { return init_model_stage(world, init); });

  const std::string base = path_in(o.work_dir, "base");
  TrainOptions pretrain;
  pretrain.mode = "full";
  pretrain.model = init.output;
  pretrain.data = {path_in(suite, "pretrain.jsonl")};
  pretrain.output = base;
  pretrain.training.max_steps = p.pretrain_steps;
  pretrain.training.global_batch = p.pretrain_batch;
  pretrain.training.micro_batch = std::min<int64_t>(p.pretrain_batch, 8);
  pretrain.training.lr = p.pretrain_lr;
  pretrain.training.warmup_ratio = 0.05;
  pretrain.training.weight_decay = 0.01;
  pretrain.training.max_len = p.max_len;
  pretrain.training.seed = o.seed;
  pretrain.training.checkpoint_every = 50;
  pretrain.training.threads = o.threads;
  steps.run("pretrain", [&] { return train_stage(world, pretrain); });

  BankBuildOptions bank_build;
  bank_build.model = base;
  bank_build.output_dir = path_in(o.work_dir, "bank");
  bank_build.data = corpus;
  bank_build.training.prompt_format = "chat";
  bank_build.training.max_steps = p.bank_steps;
  bank_build.training.global_batch = p.bank_batch;
  bank_build.training.micro_batch = std::min<int64_t>(p.bank_batch, 8);
  bank_build.training.lr = p.bank_lr;
  bank_build.training.lora_r = p.lora_r;
  bank_build.training.lora_alpha = static_cast<double>(2 * p.lora_r);
  bank_build.training.lora_targets = p.lora_targets;
  bank_build.training.max_len = p.max_len;
  bank_build.training.seed = o.seed;
  bank_build.training.checkpoint_every = 0;
  bank_build.training.threads = o.threads;
  const std::string& bank = bank_build.output_dir;
  steps.run("bank-build", [&] { return bank_build_stage(world, bank_build); });
  const auto bank_paths = ArtifactReader(path_in(bank, "bank.h5")).read_strings("adapter_paths");

  DemoTable table;
  table.tasks = o.tasks;
  for (const auto& [key, label] : kMethods) {
    table.method_keys.push_back(key);
    table.method_labels.push_back(label);
    table.accuracy.emplace_back();
  }
  json details = json::object();
  for (const auto& task : tasks) {
    const auto column = demo_task(steps, o, task, base, bank, corpus, bank_paths, details);
    for (size_t m = 0; m < kMethods.size(); ++m) table.accuracy[m].push_back(column[m]);
  }

  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::string tasks_list;
  for (const auto& t : o.tasks) tasks_list.append(tasks_list.empty() ? "" : ",").append(t);
  const std::string command = "kmoe demo --work-dir " + o.work_dir_as_given + " --tasks " + tasks_list + " --seed " +
                              std::to_string(o.seed) + " --profile " + p.name;
  json results = demo_table_json(table);
  results["command"] = command;
  results["profile"] = p.name;
  results["seed"] = o.seed;
  results["world_size"] = world.size;
  results["kmoe_version"] = kmoe_version();
  results["git_revision"] = git_revision();
  results["tasks_detail"] = details;
  results["steps"] = steps.seconds();  // of the invocation that wrote this file
  results["total_seconds"] = std::round(total * 10) / 10;
  text_write(world, path_in(o.work_dir, "demo_results.json"), results.dump(2) + "\n");
  std::ostringstream md;
  md << "# kmoe demo\n\nTest accuracy (%) per target task, " << p.test << " test examples each, K = " << p.kshot
     << " (profile " << p.name << ", seed " << o.seed << ", " << world.size << " rank" << (world.size > 1 ? "s" : "")
     << ").\n\n"
     << demo_table_markdown(table) << "\n![accuracy per task](demo.png)\n\nReproduce: `" << command << "`\n";
  text_write(world, path_in(o.work_dir, "demo.md"), md.str());
  if (world.is_root()) demo_table_png(table, path_in(o.work_dir, "demo.png"), kMethods.size() - 1);
  mpi_check(MPI_Barrier(world.comm), "demo: barrier");
  if (world.is_root()) {
    std::cout << "\nkmoe demo: test accuracy (%), profile " << p.name << "\n"
              << demo_table_text(table) << "\n"
              << o.work_dir << "/demo.md, demo_results.json, demo.png (" << std::round(total) << " s)\n";
    std::cout.flush();
  }
  StageOutcome outcome;
  outcome.reason = "demo complete";
  outcome.outputs = {path_in(o.work_dir, "demo.md"), path_in(o.work_dir, "demo_results.json"),
                     path_in(o.work_dir, "demo.png")};
  return outcome;
}

DemoProfile demo_profile(const std::string& name) {
  DemoProfile p;
  p.name = name;
  if (name == "default") {
    p.samples_per_dataset = 200;
    p.kshot = 16;
    p.test = 100;
    p.pretrain_docs = 2000;
    p.hidden = 128;
    p.layers = 4;
    p.heads = 4;
    p.kv_heads = 2;
    p.intermediate = 352;
    p.pretrain_steps = 300;
    p.pretrain_batch = 16;
    p.pretrain_lr = 3e-3;
    p.max_len = 256;
    p.bank_steps = 50;
    p.bank_batch = 8;
    p.lora_r = 8;
    p.bank_lr = 5e-3;
    p.lora_targets = "q_proj,v_proj,up_proj,down_proj";
    p.m = 8;
    p.n = 4;
    p.c = 16;
    p.moe_epochs = 5;
    p.moe_batch = 8;
    p.moe_lr = 3e-3;
    p.kshot_lora_epochs = 8;
    p.kshot_lora_lr = 3e-3;
    p.max_new_tokens = 72;
    p.embed_block_rows = 512;
    p.tau = 0.995;
  } else if (name == "tiny") {
    p.samples_per_dataset = 24;
    p.kshot = 4;
    p.test = 8;
    p.pretrain_docs = 64;
    p.hidden = 32;
    p.layers = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.intermediate = 64;
    p.pretrain_steps = 6;
    p.pretrain_batch = 8;
    p.pretrain_lr = 3e-3;
    p.max_len = 128;
    p.bank_steps = 2;
    p.bank_batch = 4;
    p.lora_r = 4;
    p.bank_lr = 3e-3;
    p.lora_targets = "q_proj,v_proj";
    p.m = 4;
    p.n = 2;
    p.c = 16;
    p.moe_epochs = 1;
    p.moe_batch = 8;
    p.moe_lr = 2e-3;
    p.kshot_lora_epochs = 1;
    p.kshot_lora_lr = 2e-3;
    p.max_new_tokens = 8;
    p.embed_block_rows = 128;
    p.tau = 0.98;
  } else {
    throw UsageError("kmoe demo: --profile must be default or tiny, not '" + name + "'");
  }
  return p;
}

DemoOptions demo_options(const po::variables_map& vm) {
  DemoOptions o;
  o.work_dir_as_given = vm["work-dir"].as<std::string>();
  o.work_dir = fs::absolute(o.work_dir_as_given).lexically_normal().string();
  o.tasks = split_commas(vm["tasks"].as<std::string>());
  o.seed = vm["seed"].as<uint64_t>();
  o.profile = demo_profile(vm["profile"].as<std::string>());
  o.threads = vm["threads"].as<int>();
  return o;
}

Subcommand demo_subcommand() {
  return {"demo",
          "The embedded default: generate the task suite, make and pretrain a small base model, build the bank, run "
          "the pipeline and the baselines on every target task, print the table",
          [](po::options_description& d, po::positional_options_description&) {
            d.add_options()("work-dir", po::value<std::string>()->default_value("kmoe-demo")->value_name("DIR"),
                            "every artifact, demo.md, demo_results.json and demo.png")(
                "tasks", po::value<std::string>()->default_value("mc,yesno,math,string")->value_name("LIST"),
                "target tasks, comma-separated (names in DIR/suite/suite.json)")(
                "seed", po::value<uint64_t>()->default_value(0), "suite, model, training and random-expert seed")(
                "profile", po::value<std::string>()->default_value("default"),
                "default (the table, under 20 minutes on 2 cores) or tiny (a smoke test)")(
                "threads", po::value<int>()->default_value(0), "CPU threads per rank (0: libtorch's default)");
          },
          [](const po::variables_map& vm) { return stage_exit(demo_run(mpi_world(), demo_options(vm))); }};
}

}  // namespace kmoe
