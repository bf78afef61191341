// See demo_command.h. Every rank walks the same steps (each subcommand is collective); what
// decides a step (the chosen experts, the best adapter) is read from artifacts, which every
// rank can read. Method and baselines share one budget: the baselines' MoE trainings take the
// run's own [train] section (`--config RUN_DIR/run.ini`), so they differ from the full method
// only in the experts or the data.
#include "evaluator/demo_command.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "data/artifact.h"
#include "evaluator/demo_table.h"
#include "evaluator/eval_command.h"
#include "launcher/log.h"
#include "launcher/mpi_world.h"
#include "launcher/version.h"

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

struct DemoOptions {
  std::string work_dir;
  std::vector<std::string> tasks;
  uint64_t seed = 0;
  DemoProfile profile;
  int threads = 0;
};

std::string str(int64_t v) {
  return std::to_string(v);
}
std::string str(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

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

// Runs the subcommands and records how long each step took.
class StepRunner {
 public:
  explicit StepRunner(std::vector<Subcommand> table) : table_(std::move(table)) {}

  void run(const std::string& step, const std::vector<std::string>& args) {
    std::string line;
    for (const auto& a : args) line.append(line.empty() ? "" : " ").append(a);
    log_info("demo: ", step, ": kmoe ", line);
    const auto t0 = std::chrono::steady_clock::now();
    ParsedCommand cmd = cli_parse(table_, args);
    const int code = cmd.command->run(cmd.vm);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (code != 0) {
      throw std::runtime_error("demo: step " + step + " (kmoe " + line + ") exited with code " + std::to_string(code) +
                               "; run kmoe demo again to resume");
    }
    seconds_.push_back({{"step", step}, {"seconds", std::round(seconds * 10) / 10}});
    log_info("demo: ", step, ": done in ", std::round(seconds * 10) / 10, " s");
  }
  const json& seconds() const { return seconds_; }

 private:
  std::vector<Subcommand> table_;
  json seconds_ = json::array();
};

json json_read(const std::string& path) {
  std::ifstream in(path);
  const json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  return j;
}

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

// RUN_DIR/run.ini: the pipeline on one task, with the profile's sizes.
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
  const std::string run_dir = path_in(path_in(o.work_dir, "runs"), name);
  const std::string cfg = path_in(run_dir, "run.ini");
  const std::string suite = path_in(o.work_dir, "suite");
  const std::string kshot = path_in(suite, task.at("kshot").at("file").get<std::string>());
  const std::string test = path_in(suite, task.at("test").at("file").get<std::string>());
  if (world.is_root()) fs::create_directories(run_dir);
  text_write(world, cfg, run_config(o, task, base, bank, corpus));

  // (f) the full method: score -> select-experts -> embed -> select-data -> train -> eval
  steps.run(name + "/pipeline", {"run", cfg, "--run-dir", run_dir});
  const auto chosen = ArtifactReader(path_in(run_dir, "experts.h5")).read_strings("chosen_paths");
  const std::string selected = path_in(run_dir, "selected.jsonl");

  // (b) 4 random adapters, trained as the full method is (same data, same [train] section)
  const auto random = seeded_choice(bank_paths, 4, o.seed ^ name_hash(name));
  std::vector<std::string> args{
      "train",  "--config", cfg,         "--mode", "moe", "--output", path_in(run_dir, "moe_random.h5"),
      "--data", selected,   "--adapters"};
  args.insert(args.end(), random.begin(), random.end());
  steps.run(name + "/train-random-moe", args);

  // (e) the selected experts, trained on the K-shot set alone
  args = {"train",  "--config", cfg,         "--mode", "moe", "--output", path_in(run_dir, "moe_kshot.h5"),
          "--data", kshot,      "--adapters"};
  args.insert(args.end(), chosen.begin(), chosen.end());
  steps.run(name + "/train-kshot-moe", args);

  // (a), (c): the base and every adapter of the bank on the test split
  const std::string eval_bank = path_in(run_dir, "eval_bank.h5");
  steps.run(name + "/eval-bank",
            {"eval", "--config", cfg, "--base", "--adapters", bank, "--output", eval_bank, "--task", name});
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
  steps.run(name + "/train-best-adapter-kshot", {"train",
                                                 "--mode",
                                                 "lora",
                                                 "--model",
                                                 base,
                                                 "--init-adapter",
                                                 best_path,
                                                 "--data",
                                                 kshot,
                                                 "--output",
                                                 kshot_lora,
                                                 "--prompt-format",
                                                 "chat",
                                                 "--epochs",
                                                 str(p.kshot_lora_epochs),
                                                 "--global-batch",
                                                 str(std::min<int64_t>(p.kshot, 8)),
                                                 "--micro-batch",
                                                 str(std::min<int64_t>(p.kshot, 8)),
                                                 "--lr",
                                                 str(p.kshot_lora_lr),
                                                 "--max-len",
                                                 str(p.max_len),
                                                 "--seed",
                                                 str(static_cast<int64_t>(o.seed)),
                                                 "--lora-dropout",
                                                 "0"});

  const std::string eval_baselines = path_in(run_dir, "eval_baselines.h5");
  steps.run(
      name + "/eval-baselines",
      {"eval", "--config", cfg, "--adapters", kshot_lora, "--moe", "random_moe=" + path_in(run_dir, "moe_random.h5"),
       "moe_kshot=" + path_in(run_dir, "moe_kshot.h5"), "--output", eval_baselines, "--task", name});
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

int demo_run(const std::vector<Subcommand>& commands, const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  const auto t_start = std::chrono::steady_clock::now();
  DemoOptions o;
  o.work_dir = fs::absolute(vm["work-dir"].as<std::string>()).lexically_normal().string();
  o.tasks = split_commas(vm["tasks"].as<std::string>());
  if (o.tasks.empty()) throw UsageError("kmoe demo: --tasks names no task");
  o.seed = vm["seed"].as<uint64_t>();
  o.profile = demo_profile(vm["profile"].as<std::string>());
  o.threads = vm["threads"].as<int>();
  const DemoProfile& p = o.profile;
  if (world.is_root()) fs::create_directories(o.work_dir);
  mpi_check(MPI_Barrier(world.comm), "demo: barrier");
  StepRunner steps(commands);
  const std::string threads = str(static_cast<int64_t>(o.threads));
  const auto with_threads = [&](std::vector<std::string> a) {
    if (o.threads > 0) a.insert(a.end(), {"--threads", threads});
    return a;
  };

  const std::string suite = path_in(o.work_dir, "suite");
  steps.run("suite", {"suite", "--output", suite, "--seed", str(static_cast<int64_t>(o.seed)), "--samples-per-dataset",
                      str(p.samples_per_dataset), "--kshot", str(p.kshot), "--test", str(p.test), "--pretrain-docs",
                      str(p.pretrain_docs)});
  const json manifest = json_read(path_in(suite, "suite.json"));
  std::vector<json> tasks;
  for (const auto& t : o.tasks) tasks.push_back(suite_task(manifest, path_in(suite, "suite.json"), t));
  std::vector<std::string> corpus;
  for (const auto& d : manifest.at("datasets")) corpus.push_back(path_in(suite, d.at("file").get<std::string>()));

  const std::string init = path_in(o.work_dir, "init");
  steps.run("init-model",
            {"init-model", "--output", init, "--hidden", str(p.hidden), "--layers", str(p.layers), "--heads",
             str(p.heads), "--kv-heads", str(p.kv_heads), "--intermediate", str(p.intermediate), "--max-position",
             str(std::max<int64_t>(p.max_len, 256)), "--seed", str(static_cast<int64_t>(o.seed))});
  const std::string base = path_in(o.work_dir, "base");
  steps.run("pretrain", with_threads({"train",
                                      "--mode",
                                      "full",
                                      "--model",
                                      init,
                                      "--data",
                                      path_in(suite, "pretrain.jsonl"),
                                      "--output",
                                      base,
                                      "--max-steps",
                                      str(p.pretrain_steps),
                                      "--global-batch",
                                      str(p.pretrain_batch),
                                      "--micro-batch",
                                      str(std::min<int64_t>(p.pretrain_batch, 8)),
                                      "--lr",
                                      str(p.pretrain_lr),
                                      "--warmup-ratio",
                                      "0.05",
                                      "--weight-decay",
                                      "0.01",
                                      "--max-len",
                                      str(p.max_len),
                                      "--seed",
                                      str(static_cast<int64_t>(o.seed)),
                                      "--checkpoint-every",
                                      "50"}));

  const std::string bank = path_in(o.work_dir, "bank");
  std::vector<std::string> bank_args{"bank", "build", "--model", base, "--output-dir", bank, "--data"};
  bank_args.insert(bank_args.end(), corpus.begin(), corpus.end());
  bank_args.insert(bank_args.end(), {"--prompt-format",
                                     "chat",
                                     "--max-steps",
                                     str(p.bank_steps),
                                     "--global-batch",
                                     str(p.bank_batch),
                                     "--micro-batch",
                                     str(std::min<int64_t>(p.bank_batch, 8)),
                                     "--lr",
                                     str(p.bank_lr),
                                     "--lora-r",
                                     str(p.lora_r),
                                     "--lora-alpha",
                                     str(2 * p.lora_r),
                                     "--lora-targets",
                                     p.lora_targets,
                                     "--max-len",
                                     str(p.max_len),
                                     "--seed",
                                     str(static_cast<int64_t>(o.seed)),
                                     "--checkpoint-every",
                                     "0"});
  steps.run("bank-build", with_threads(bank_args));
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
  std::string command = "kmoe demo --work-dir " + vm["work-dir"].as<std::string>() + " --tasks " +
                        vm["tasks"].as<std::string>() + " --seed " + str(static_cast<int64_t>(o.seed)) + " --profile " +
                        p.name;
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
  return 0;
}

}  // namespace

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

Subcommand demo_subcommand(std::function<std::vector<Subcommand>()> table) {
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
          [table](const po::variables_map& vm) { return demo_run(table(), vm); }};
}

}  // namespace kmoe
