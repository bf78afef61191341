// See pipeline.h. Every rank runs the driver, and every stage is collective, so the ranks walk
// the same plan in step; what only rank 0 looks at (files, experts.h5) is broadcast. The
// driver cannot ask a stage whether it will skip, so it fingerprints the stage's artifact
// (size and mtime of each file) before and after: unchanged means the stage found it complete.
#include "launcher/pipeline.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "data/artifact.h"
#include "launcher/log.h"
#include "launcher/mpi_world.h"
#include "launcher/output_guard.h"
#include "launcher/version.h"

namespace kmoe {

namespace {

namespace fs = std::filesystem;

// The exit code of a stage that checkpointed on a signal (SLURM requeues on it).
constexpr int kCheckpointedExit = 75;

struct RunOptions {
  std::string config, run_dir;
  bool bank_build = false;
  std::string from, only, to;
  bool force = false, dry_run = false;
};

// One stage as the driver sees it. `args` is called when the stage is about to run (or is
// validated), because the training stage's experts are known only once experts.h5 exists.
struct PipelineStage {
  std::string name;                                        // as --from/--only/--to name it
  std::vector<std::string> command;                        // the subcommand (and its action), e.g. {"score"}
  std::function<std::vector<std::string>()> args;          // the wiring, without --config and --force
  std::string artifact;                                    // fingerprinted to tell "ran" from "skipped"
  std::vector<std::string> extra_outputs;                  // when one is missing the stage is forced
  std::vector<std::pair<std::string, std::string>> needs;  // path -> the stage that makes it
};

std::string bcast_string(const MpiWorld& world, std::string s) {
  uint64_t n = s.size();
  mpi_check(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, world.comm), "run: broadcast size");
  s.resize(n);
  mpi_check(MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, 0, world.comm), "run: broadcast");
  return s;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out.append(out.empty() ? "" : sep).append(s);
  return out;
}

// "" when missing; otherwise size and mtime of the file, or of every file under the folder.
std::string fingerprint(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return "";
  const auto one = [](const fs::path& p) {
    std::error_code e;
    return p.string() + " " + std::to_string(fs::file_size(p, e)) + " " +
           std::to_string(fs::last_write_time(p, e).time_since_epoch().count()) + "\n";
  };
  if (!fs::is_directory(path, ec)) return one(path);
  std::vector<std::string> rows;
  for (const auto& e : fs::recursive_directory_iterator(path, ec))
    if (e.is_regular_file()) rows.push_back(one(e.path()));
  std::sort(rows.begin(), rows.end());
  return "dir\n" + join(rows, "");
}

// The adapters select-experts chose (experts.h5 /chosen_paths), read on rank 0; empty when
// experts.h5 does not exist yet.
std::vector<std::string> chosen_experts(const MpiWorld& world, const std::string& experts_h5) {
  std::string joined, error;
  if (world.is_root() && fs::exists(experts_h5)) {
    try {
      joined = join(ArtifactReader(experts_h5).read_strings("chosen_paths"), "\n");
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  error = bcast_string(world, error);
  if (!error.empty()) throw std::runtime_error("run: " + experts_h5 + ": " + error);
  return split_lines(bcast_string(world, joined));
}

bool command_has_option(const Subcommand& sub, const std::string& option) {
  po::options_description d;
  po::positional_options_description p;
  if (sub.add_options) sub.add_options(d, p);
  return d.find_nothrow(option, false) != nullptr;
}

const Subcommand* find_command(const std::vector<Subcommand>& table, const std::string& name) {
  for (const auto& s : table)
    if (s.name == name) return &s;
  return nullptr;
}

// The plan, bank build to report. `vm_of` parses a stage's argument vector (with the config)
// so the wiring can read what the user configured: the corpus the bank is built from, the
// K-shot file the training data needs when select-data leaves it out.
std::vector<PipelineStage> pipeline_plan(const MpiWorld& world, const RunOptions& o,
                                         const std::function<po::variables_map(const PipelineStage&)>& vm_of) {
  const auto in_run = [&](const std::string& name) { return (fs::path(o.run_dir) / name).string(); };
  const std::string bank = in_run("bank"), scores = in_run("scores.h5"), experts = in_run("experts.h5"),
                    embeddings = in_run("embeddings.h5"), selection = in_run("data_selection.h5"),
                    selected = in_run("selected.jsonl"), moe = in_run("moe.h5"), eval = in_run("eval.h5");
  std::vector<PipelineStage> plan;
  PipelineStage embed{"embed",    {"embed"}, [=] { return std::vector<std::string>{"--output", embeddings}; },
                      embeddings, {},        {}};
  if (o.bank_build) {
    // One adapter per open dataset: the bank is built from the corpus that embed reads.
    plan.push_back({"bank-build",
                    {"bank", "build"},
                    [=] {
                      std::vector<std::string> a{"--output-dir", bank, "--data"};
                      const auto embed_vm = vm_of(embed);
                      for (const auto& c : embed_vm["corpus"].as<std::vector<std::string>>()) a.push_back(c);
                      return a;
                    },
                    in_run("bank/bank.h5"),
                    {},
                    {}});
  }
  plan.push_back({"score",
                  {"score"},
                  [=] {
                    std::vector<std::string> a{"--output", scores};
                    if (o.bank_build) a.insert(a.end(), {"--bank", bank});
                    return a;
                  },
                  scores,
                  {},
                  o.bank_build ? std::vector<std::pair<std::string, std::string>>{{bank, "bank-build"}}
                               : std::vector<std::pair<std::string, std::string>>{}});
  plan.push_back({"select-experts",
                  {"select-experts"},
                  [=] {
                    return std::vector<std::string>{"--scores", scores, "--output", experts};
                  },
                  experts,
                  {},
                  {{scores, "score"}}});
  plan.push_back(embed);
  PipelineStage select_data{"select-data",
                            {"select-data"},
                            [=] {
                              return std::vector<std::string>{"--embeddings", embeddings, "--output-dir", o.run_dir};
                            },
                            selection,
                            {selected},
                            {{embeddings, "embed"}}};
  plan.push_back(select_data);
  plan.push_back({"train",
                  {"train"},
                  [=, &world] {
                    std::vector<std::string> a{"--mode", "moe", "--output", moe, "--data", selected};
                    const auto sd = vm_of(select_data);
                    if (sd["no-kshot"].as<bool>()) a.push_back(sd["kshot"].as<std::string>());
                    a.push_back("--adapters");
                    auto chosen = chosen_experts(world, experts);
                    if (chosen.empty()) chosen.push_back("<chosen_paths of " + experts + ">");
                    a.insert(a.end(), chosen.begin(), chosen.end());
                    return a;
                  },
                  moe,
                  {},
                  {{experts, "select-experts"}, {selected, "select-data"}}});
  plan.push_back({"eval",
                  {"eval"},
                  [=] {
                    return std::vector<std::string>{"--moe", moe, "--output", eval};
                  },
                  eval,
                  {},
                  {{moe, "train"}}});
  plan.push_back({"report",
                  {"report"},
                  [=] { return std::vector<std::string>{o.run_dir}; },
                  in_run("report.md"),
                  {},
                  {{eval, "eval"}}});
  return plan;
}

int64_t stage_index(const std::vector<PipelineStage>& plan, const std::string& name, const char* option) {
  for (size_t i = 0; i < plan.size(); ++i)
    if (plan[i].name == name) return static_cast<int64_t>(i);
  std::vector<std::string> names;
  for (const auto& s : plan) names.push_back(s.name);
  throw UsageError(std::string("kmoe run: ") + option + ": unknown stage '" + name + "' (valid: " + join(names, ", ") +
                   ")");
}

// RUN_DIR/run.json, written by rank 0 to a temporary name and renamed into place.
void run_record_write(const MpiWorld& world, const std::string& run_dir, const nlohmann::json& record) {
  if (!world.is_root()) return;
  const fs::path final_path = fs::path(run_dir) / "run.json";
  const fs::path partial = fs::path(run_dir) / "run.json.partial";
  {
    std::ofstream out(partial);
    out << record.dump(2) << "\n";
    out.close();
    if (!out) throw std::runtime_error(partial.string() + ": write failed");
  }
  fs::rename(partial, final_path);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run_run(const std::vector<Subcommand>& table, const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  RunOptions o;
  if (!vm.count("config")) throw UsageError("kmoe run: needs a CONFIG file (kmoe run CONFIG)");
  o.config = fs::absolute(vm["config"].as<std::string>()).lexically_normal().string();
  o.run_dir = path_normalize(vm["run-dir"].as<std::string>());
  o.bank_build = vm["bank-build"].as<bool>();
  if (vm.count("from")) o.from = vm["from"].as<std::string>();
  if (vm.count("only")) o.only = vm["only"].as<std::string>();
  if (vm.count("to")) o.to = vm["to"].as<std::string>();
  o.force = vm["force"].as<bool>();
  o.dry_run = vm["dry-run"].as<bool>();
  if (!o.only.empty() && (!o.from.empty() || !o.to.empty()))
    throw UsageError("kmoe run: --only cannot be combined with --from or --to");

  const auto command_of = [&](const PipelineStage& s) {
    const Subcommand* sub = find_command(table, s.command[0]);
    if (!sub)
      throw UsageError("kmoe run: stage " + s.name + " needs the subcommand '" + s.command[0] +
                       "', which this kmoe does not have (run up to an earlier stage with --to)");
    return sub;
  };
  const auto argv_of = [&](const PipelineStage& s, bool forced) {
    std::vector<std::string> a = s.command;
    a.insert(a.end(), {"--config", o.config});
    for (auto& x : s.args()) a.push_back(std::move(x));
    if (forced && command_has_option(*command_of(s), "force")) a.push_back("--force");
    return a;
  };
  const auto vm_of = [&](const PipelineStage& s) {
    command_of(s);
    std::vector<std::string> a = s.command;
    a.insert(a.end(), {"--config", o.config});
    for (auto& x : s.args()) a.push_back(std::move(x));
    return cli_parse(table, a).vm;
  };
  const auto plan = pipeline_plan(world, o, vm_of);

  int64_t first = 0, last = static_cast<int64_t>(plan.size()) - 1, force_from = o.force ? 0 : last + 1;
  if (!o.only.empty()) first = last = force_from = stage_index(plan, o.only, "--only");
  if (!o.from.empty()) force_from = std::min(force_from, stage_index(plan, o.from, "--from"));
  if (!o.to.empty()) last = stage_index(plan, o.to, "--to");

  // Every stage is parsed before any runs, so a bad key in [train] is an error now, not
  // after hours of scoring.
  std::vector<std::vector<std::string>> argvs(plan.size());
  for (int64_t i = first; i <= last; ++i) argvs[i] = argv_of(plan[i], i >= force_from);
  for (int64_t i = first; i <= last; ++i) cli_parse(table, argvs[i]);

  if (!o.only.empty()) {
    std::string missing;
    if (world.is_root()) {
      for (const auto& [path, maker] : plan[first].needs)
        if (!fs::exists(path)) missing += (missing.empty() ? "" : "; ") + path + " (made by stage " + maker + ")";
    }
    missing = bcast_string(world, missing);
    if (!missing.empty())
      throw UsageError("kmoe run --only " + o.only + ": missing input " + missing + "; run the earlier stages first");
  }

  if (o.dry_run) {
    if (world.is_root()) {
      for (int64_t i = first; i <= last; ++i)
        std::cout << plan[i].name << (i >= force_from ? " (forced)" : "") << ": kmoe " << join(argvs[i], " ") << "\n";
    }
    return 0;
  }

  // One driver per run directory: a second `kmoe run` on it fails at once (rank 0 holds
  // RUN_DIR/run.lock until the run ends; see output_guard.h for the file systems).
  OutputLock lock;
  std::string refusal;
  if (world.is_root()) {
    try {
      fs::create_directories(o.run_dir);
      lock = OutputLock((fs::path(o.run_dir) / "run").string());
    } catch (const std::exception& e) {
      refusal = e.what();
    }
  }
  refusal = bcast_string(world, refusal);
  if (!refusal.empty()) throw std::runtime_error("kmoe run: " + refusal);
  nlohmann::json record = {{"config", o.config},
                           {"config_text", bcast_string(world, world.is_root() ? read_text(o.config) : "")},
                           {"run_dir", o.run_dir},
                           {"kmoe_version", kmoe_version()},
                           {"git_revision", git_revision()},
                           {"world_size", world.size},
                           {"status", "running"},
                           {"start_time", bcast_string(world, utc_now_iso8601())},
                           {"stages", nlohmann::json::array()}};
  for (size_t i = 0; i < plan.size(); ++i) {
    const bool selected = static_cast<int64_t>(i) >= first && static_cast<int64_t>(i) <= last;
    record["stages"].push_back({{"name", plan[i].name}, {"status", selected ? "pending" : "not selected"}});
  }
  run_record_write(world, o.run_dir, record);

  for (int64_t i = first; i <= last; ++i) {
    const PipelineStage& stage = plan[i];
    bool forced = i >= force_from;
    if (!forced) {
      std::string lost;
      if (world.is_root() && fs::exists(stage.artifact)) {
        for (const auto& p : stage.extra_outputs)
          if (!fs::exists(p)) lost = p;
      }
      lost = bcast_string(world, lost);
      if (!lost.empty()) {
        log_info("stage ", stage.name, ": ", lost, " is missing; forcing the stage");
        forced = true;
      }
    }
    const auto argv = argv_of(stage, forced);  // again: train's experts exist only now
    auto& rec = record["stages"][i];
    rec["argv"] = argv;
    rec["forced"] = forced;
    rec["status"] = "running";
    rec["start_time"] = bcast_string(world, utc_now_iso8601());
    run_record_write(world, o.run_dir, record);
    log_info("stage ", stage.name, ": running kmoe ", join(argv, " "));

    const std::string before = world.is_root() ? fingerprint(stage.artifact) : "";
    const auto t0 = std::chrono::steady_clock::now();
    int code = 0;
    try {
      ParsedCommand cmd = cli_parse(table, argv);
      code = cmd.command->run(cmd.vm);
    } catch (const std::exception& e) {
      rec["status"] = "failed";
      rec["error"] = e.what();
      record["status"] = "failed";
      run_record_write(world, o.run_dir, record);
      throw;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool unchanged = world.is_root() && !before.empty() && fingerprint(stage.artifact) == before;
    const bool skipped = bcast_string(world, unchanged ? "1" : "0") == "1";
    rec["end_time"] = bcast_string(world, utc_now_iso8601());
    rec["seconds"] = seconds;
    rec["exit_code"] = code;
    if (code == 0) {
      rec["status"] = skipped ? "skipped" : "ran";
      if (skipped)
        log_info("stage ", stage.name, ": skipped (complete)");
      else
        log_info("stage ", stage.name, ": ran (", static_cast<int64_t>(seconds * 10) / 10.0, " s)");
    } else {
      rec["status"] = code == kCheckpointedExit ? "checkpointed" : "failed";
      record["status"] = rec["status"];
      run_record_write(world, o.run_dir, record);
      log_info("stage ", stage.name, ": ", rec["status"].get<std::string>(), " (exit ", code, ")");
      return code;
    }
    run_record_write(world, o.run_dir, record);
  }
  record["status"] = "complete";
  record["end_time"] = bcast_string(world, utc_now_iso8601());
  run_record_write(world, o.run_dir, record);
  log_info("run: complete; ", o.run_dir, "/run.json");
  return 0;
}

}  // namespace

Subcommand run_subcommand(std::function<std::vector<Subcommand>()> table) {
  return {"run",
          "Run the pipeline (bank build, score, select-experts, embed, select-data, train, eval, report) "
          "from one INI config in a run directory, skipping complete stages",
          [](po::options_description& d, po::positional_options_description& p) {
            d.add_options()("run-dir", po::value<std::string>()->required()->value_name("DIR"),
                            "the run directory: every artifact, run.json and the report")(
                "bank-build", po::bool_switch(), "build the LoRA bank (RUN_DIR/bank) from the corpus first")(
                "from", po::value<std::string>()->value_name("STAGE"), "force this stage and the later ones")(
                "only", po::value<std::string>()->value_name("STAGE"),
                "run (forced) just this stage; its inputs must exist")(
                "to", po::value<std::string>()->value_name("STAGE"), "stop after this stage")(
                "force", po::bool_switch(), "force every stage")("dry-run", po::bool_switch(),
                                                                 "print each stage's command line and exit");
            p.add("config", 1);
          },
          [table](const po::variables_map& vm) { return run_run(table(), vm); }};
}

}  // namespace kmoe
