// See pipeline.h. Every rank runs the driver, and every stage is collective, so the ranks walk
// the same plan in step; what only rank 0 looks at (files, experts.h5) is broadcast.
#include "launcher/pipeline.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "data/store/artifact.h"
#include "launcher/commands.h"
#include "runtime/log.h"
#include "runtime/output_guard.h"
#include "runtime/version.h"

namespace kmoe {

namespace {

namespace fs = std::filesystem;

// One stage as the driver sees it.
struct PipelineStage {
  std::string name;                                        // as --from/--only/--to name it
  std::vector<std::pair<std::string, std::string>> needs;  // path -> the stage that makes it
  // Runs the stage (forced or not) and records its wiring (the paths the driver gave it) in
  // `wiring`; called only when the stage is about to run, because the training stage's
  // experts are known only once experts.h5 exists.
  std::function<StageOutcome(bool forced, nlohmann::json& wiring)> run;
};

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

// The adapters select-experts chose (experts.h5 /chosen_paths), read on rank 0.
std::vector<std::string> chosen_experts(const MpiWorld& world, const std::string& experts_h5) {
  std::string joined, error;
  if (world.is_root()) {
    try {
      joined = join(ArtifactReader(experts_h5).read_strings("chosen_paths"), "\n");
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  error = mpi_bcast_string(world, error);
  if (!error.empty()) throw std::runtime_error("run: " + experts_h5 + ": " + error);
  return split_lines(mpi_bcast_string(world, joined));
}

// The plan, bank build to report, each stage wired to the run directory.
std::vector<PipelineStage> pipeline_plan(const MpiWorld& world, const PipelineOptions& o) {
  const auto in_run = [&](const std::string& name) { return (fs::path(o.run_dir) / name).string(); };
  const std::string bank = in_run("bank"), scores = in_run("scores.h5"), experts = in_run("experts.h5"),
                    embeddings = in_run("embeddings.h5"), selection = in_run("data_selection.h5"),
                    selected = in_run("selected.jsonl"), moe = in_run("moe.h5"), eval = in_run("eval.h5"),
                    soft_prompt = in_run("soft_prompt");
  using Needs = std::vector<std::pair<std::string, std::string>>;
  std::vector<PipelineStage> plan;
  if (o.bank_build) {
    // One adapter per open dataset: the bank is built from the corpus that embed reads.
    plan.push_back({"bank-build", {}, [=, &world](bool forced, nlohmann::json& wiring) {
                      BankBuildOptions b = o.bank;
                      b.output_dir = bank;
                      b.data = o.embed.corpus;
                      b.force = forced;
                      wiring = {{"output_dir", b.output_dir}, {"data", b.data}};
                      return bank_build_stage(world, b);
                    }});
  }
  plan.push_back(
      {"score", o.bank_build ? Needs{{bank, "bank-build"}} : Needs{}, [=, &world](bool forced, nlohmann::json& wiring) {
         ScoreOptions s = o.score;
         s.output = scores;
         if (o.bank_build) s.bank = bank;
         s.force = forced;
         wiring = {{"output", s.output}, {"bank", s.bank}};
         return score_stage(world, s);
       }});
  plan.push_back({"select-experts", {{scores, "score"}}, [=, &world](bool forced, nlohmann::json& wiring) {
                    SelectExpertsOptions s = o.select_experts;
                    s.scores = scores;
                    s.output = experts;
                    s.force = forced;
                    wiring = {{"scores", s.scores}, {"output", s.output}};
                    return select_experts_stage(world, s);
                  }});
  plan.push_back({"embed", {}, [=, &world](bool forced, nlohmann::json& wiring) {
                    EmbedOptions e = o.embed;
                    e.output = embeddings;
                    e.force = forced;
                    wiring = {{"output", e.output}};
                    return embed_stage(world, e);
                  }});
  plan.push_back({"select-data", {{embeddings, "embed"}}, [=, &world](bool forced, nlohmann::json& wiring) {
                    SelectDataOptions s = o.select_data;
                    s.embeddings = embeddings;
                    s.output_dir = o.run_dir;
                    s.force = forced;
                    wiring = {{"embeddings", s.embeddings}, {"output_dir", s.output_dir}};
                    return select_data_stage(world, s);
                  }});
  // ProMoT (METHOD.md §3), when the config has [train.prompt]: a soft prompt trained on the
  // K-shot set with the model frozen; the MoE then trains with it frozen before every
  // sequence, and eval uses it (the target task is the prompt's format).
  Needs train_needs{{experts, "select-experts"}, {selected, "select-data"}}, eval_needs{{moe, "train"}};
  if (o.soft_prompt) {
    plan.push_back({"soft-prompt", {}, [=, &world](bool forced, nlohmann::json& wiring) {
                      TrainOptions t = o.prompt_train;
                      t.mode = "prompt";
                      t.output = soft_prompt;
                      t.data = {o.score.kshot};
                      t.force = forced;
                      wiring = {{"mode", t.mode}, {"output", t.output}, {"data", t.data}};
                      return train_stage(world, t);
                    }});
    train_needs.emplace_back(soft_prompt, "soft-prompt");
    eval_needs.emplace_back(soft_prompt, "soft-prompt");
  }
  plan.push_back({"train", train_needs, [=, &world](bool forced, nlohmann::json& wiring) {
                    TrainOptions t = o.train;
                    t.mode = "moe";
                    t.output = moe;
                    // select-data leaves the K-shot set out of selected.jsonl when told to.
                    t.data = {selected};
                    if (o.select_data.no_kshot) t.data.push_back(o.select_data.kshot);
                    t.adapters = chosen_experts(world, experts);
                    if (o.soft_prompt) t.soft_prompt = soft_prompt;
                    t.force = forced;
                    wiring = {{"mode", t.mode}, {"output", t.output}, {"data", t.data}, {"adapters", t.adapters}};
                    if (o.soft_prompt) wiring["soft_prompt"] = t.soft_prompt;
                    return train_stage(world, t);
                  }});
  plan.push_back({"eval", eval_needs, [=, &world](bool forced, nlohmann::json& wiring) {
                    EvalOptions e = o.eval;
                    e.moe = {moe};
                    e.output = eval;
                    if (o.soft_prompt) e.scoring.soft_prompt = soft_prompt;
                    e.force = forced;
                    wiring = {{"moe", e.moe}, {"output", e.output}};
                    if (o.soft_prompt) wiring["soft_prompt"] = e.scoring.soft_prompt;
                    return eval_stage(world, e);
                  }});
  // PANDA (METHOD.md §2), when the config has [panda]: the trained MoE is the expert whose
  // preferences on the K-shot set an LLM explains (insights.h5); eval-panda then evaluates the
  // base model with the nearest insights before each test question (eval_panda.h5).
  if (o.panda) {
    const std::string insights = in_run("insights.h5"), eval_panda = in_run("eval_panda.h5");
    plan.push_back({"panda-learn", {{moe, "train"}}, [=, &world](bool forced, nlohmann::json& wiring) {
                      PandaLearnOptions p = o.panda_learn;
                      p.expert_model = o.score.model;
                      p.expert_moe = moe;
                      p.expert_adapter.clear();
                      if (p.llm.empty()) p.llm = o.score.model;
                      if (p.encoder.model.empty()) {  // the keys' encoder: embed's, unless [panda] names one
                        p.encoder.kind = o.embed.encoder;
                        p.encoder.model = o.embed.encoder_model;
                        p.encoder.pooling = o.embed.pooling;
                        p.encoder.prefix = o.embed.prefix;
                        p.encoder.max_tokens = o.embed.max_tokens;
                      }
                      p.data = o.score.kshot;
                      p.output = insights;
                      p.force = forced;
                      wiring = {{"expert_model", p.expert_model},
                                {"expert_moe", p.expert_moe},
                                {"llm", p.llm},
                                {"data", p.data},
                                {"output", p.output},
                                {"encoder_model", p.encoder.model}};
                      return panda_learn_stage(world, p);
                    }});
    plan.push_back({"eval-panda", {{insights, "panda-learn"}}, [=, &world](bool forced, nlohmann::json& wiring) {
                      EvalOptions e = o.panda_eval;
                      e.base = true;
                      e.adapters.clear();
                      e.moe.clear();
                      e.insights.pool = insights;
                      e.output = eval_panda;
                      e.force = forced;
                      wiring = {{"base", true}, {"insights", e.insights.pool}, {"output", e.output}};
                      return eval_stage(world, e);
                    }});
  }
  plan.push_back({"report", {{eval, "eval"}}, [=, &world](bool, nlohmann::json& wiring) {
                    ReportOptions r = o.report;
                    r.run_dir = o.run_dir;
                    wiring = {{"run_dir", r.run_dir}};
                    return report_stage(world, r);
                  }});
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

// RUN_DIR/run.lock, held by rank 0 until the run ends: one driver per run directory (see
// output_guard.h for the file systems).
OutputLock run_lock(const MpiWorld& world, const std::string& run_dir) {
  OutputLock lock;
  std::string refusal;
  if (world.is_root()) {
    try {
      fs::create_directories(run_dir);
      lock = OutputLock((fs::path(run_dir) / "run").string());
    } catch (const std::exception& e) {
      refusal = e.what();
    }
  }
  refusal = mpi_bcast_string(world, refusal);
  if (!refusal.empty()) throw std::runtime_error("kmoe run: " + refusal);
  return lock;
}

}  // namespace

// About 100 lines: the checks before anything runs, then one loop whose body records each
// stage in run.json before, after and on failure; the record's life is easiest to follow whole.
StageOutcome pipeline_run(const MpiWorld& world, const PipelineOptions& o) {
  if (o.run_dir.empty()) throw UsageError("kmoe run: needs --run-dir");
  if (!o.only.empty() && (!o.from.empty() || !o.to.empty()))
    throw UsageError("kmoe run: --only cannot be combined with --from or --to");
  const auto plan = pipeline_plan(world, o);
  int64_t first = 0, last = static_cast<int64_t>(plan.size()) - 1, force_from = o.force ? 0 : last + 1;
  if (!o.only.empty()) first = last = force_from = stage_index(plan, o.only, "--only");
  if (!o.from.empty()) force_from = std::min(force_from, stage_index(plan, o.from, "--from"));
  if (!o.to.empty()) last = stage_index(plan, o.to, "--to");

  for (int64_t i = first; i <= last; ++i) {
    const auto error = o.section_errors.find(plan[i].name);
    if (error != o.section_errors.end()) throw UsageError(error->second);
  }
  if (!o.only.empty()) {
    std::string missing;
    if (world.is_root()) {
      for (const auto& [path, maker] : plan[first].needs)
        if (!fs::exists(path)) missing += (missing.empty() ? "" : "; ") + path + " (made by stage " + maker + ")";
    }
    missing = mpi_bcast_string(world, missing);
    if (!missing.empty())
      throw UsageError("kmoe run --only " + o.only + ": missing input " + missing + "; run the earlier stages first");
  }
  if (o.dry_run) {
    if (world.is_root()) {
      for (int64_t i = first; i <= last; ++i) {
        std::cout << plan[i].name << (i >= force_from ? " (forced)" : "");
        for (const auto& [path, maker] : plan[i].needs) std::cout << " <- " << path;
        std::cout << "\n";
      }
    }
    return {};
  }

  const OutputLock lock = run_lock(world, o.run_dir);
  nlohmann::json record = {{"config", o.config},
                           {"config_text", o.config_text},
                           {"run_dir", o.run_dir},
                           {"kmoe_version", kmoe_version()},
                           {"git_revision", git_revision()},
                           {"world_size", world.size},
                           {"status", "running"},
                           {"start_time", mpi_bcast_string(world, utc_now_iso8601())},
                           {"stages", nlohmann::json::array()}};
  for (size_t i = 0; i < plan.size(); ++i) {
    const bool selected = static_cast<int64_t>(i) >= first && static_cast<int64_t>(i) <= last;
    record["stages"].push_back({{"name", plan[i].name}, {"status", selected ? "pending" : "not selected"}});
  }
  run_record_write(world, o.run_dir, record);

  StageOutcome outcome;
  for (int64_t i = first; i <= last; ++i) {
    const PipelineStage& stage = plan[i];
    const bool forced = i >= force_from;
    auto& rec = record["stages"][i];
    rec["forced"] = forced;
    rec["status"] = "running";
    rec["start_time"] = mpi_bcast_string(world, utc_now_iso8601());
    run_record_write(world, o.run_dir, record);
    log_info("stage ", stage.name, forced ? ": running (forced)" : ": running");
    const auto t0 = std::chrono::steady_clock::now();
    nlohmann::json wiring = nlohmann::json::object();
    try {
      outcome = stage.run(forced, wiring);
    } catch (const std::exception& e) {
      rec["wiring"] = wiring;
      rec["status"] = "failed";
      rec["error"] = e.what();
      record["status"] = "failed";
      run_record_write(world, o.run_dir, record);
      throw;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rec["wiring"] = wiring;
    rec["reason"] = outcome.reason;  // why it ran or was skipped: "missing", "options differ: ...", ...
    rec["outputs"] = outcome.outputs;
    rec["end_time"] = mpi_bcast_string(world, utc_now_iso8601());
    rec["seconds"] = seconds;
    rec["exit_code"] = outcome.exit_code;
    if (outcome.exit_code != 0) {
      rec["status"] = outcome.exit_code == kExitCheckpointed ? "checkpointed" : "failed";
      record["status"] = rec["status"];
      run_record_write(world, o.run_dir, record);
      log_info("stage ", stage.name, ": ", rec["status"].get<std::string>(), " (exit ", outcome.exit_code, ")");
      return outcome;
    }
    rec["status"] = outcome.skipped ? "skipped" : "ran";
    if (outcome.skipped)
      log_info("stage ", stage.name, ": skipped (complete)");
    else
      log_info("stage ", stage.name, ": ran (", static_cast<int64_t>(seconds * 10) / 10.0, " s)");
    run_record_write(world, o.run_dir, record);
  }
  record["status"] = "complete";
  record["end_time"] = mpi_bcast_string(world, utc_now_iso8601());
  run_record_write(world, o.run_dir, record);
  log_info("run: complete; ", o.run_dir, "/run.json");
  outcome.exit_code = 0;
  return outcome;
}

PipelineOptions pipeline_options(const po::variables_map& vm) {
  PipelineOptions o;
  if (!vm.count("config")) throw UsageError("kmoe run: needs a CONFIG file (kmoe run CONFIG)");
  o.config = fs::absolute(vm["config"].as<std::string>()).lexically_normal().string();
  o.run_dir = path_normalize(vm["run-dir"].as<std::string>());
  cli_get(vm, "bank-build", o.bank_build);
  cli_get(vm, "from", o.from);
  cli_get(vm, "only", o.only);
  cli_get(vm, "to", o.to);
  cli_get(vm, "force", o.force);
  cli_get(vm, "dry-run", o.dry_run);
  // Each stage's section; the wiring the driver sets is not looked for.
  const auto& table = commands_table();
  // A section that cannot be read is an error only if its stage is selected (pipeline_run).
  const auto section = [&](const std::string& stage, const char* command, const std::vector<std::string>& wiring,
                           const auto& to_options, auto& field, const std::string& variant = "") {
    try {
      field = to_options(cli_parse_config(table, command, o.config, wiring, variant));
    } catch (const UsageError& e) {
      o.section_errors[stage] = e.what();
    }
  };
  if (o.bank_build) section("bank-build", "bank", {"output-dir", "data", "action"}, bank_build_options, o.bank);
  section("score", "score", {"output", "bank"}, score_options, o.score);
  section("select-experts", "select-experts", {"scores", "output"}, select_experts_options, o.select_experts);
  section("embed", "embed", {"output"}, embed_options, o.embed);
  section("select-data", "select-data", {"embeddings", "output-dir"}, select_data_options, o.select_data);
  section("train", "train", {"mode", "output", "data", "adapters"}, train_options, o.train);
  for (const auto& e : ini_parse(o.config)) o.soft_prompt = o.soft_prompt || e.section == "train.prompt";
  if (o.soft_prompt)
    section("soft-prompt", "train", {"mode", "output", "data", "adapters"}, train_options, o.prompt_train,
            "train.prompt");
  section("eval", "eval", {"moe", "output"}, eval_options, o.eval);
  for (const auto& e : ini_parse(o.config)) o.panda = o.panda || e.section == "panda";
  if (o.panda) {
    section("panda-learn", "panda",
            {"action", "expert-model", "expert-adapter", "expert-moe", "llm", "data", "output", "encoder-model"},
            panda_learn_options, o.panda_learn);
    section("eval-panda", "eval", {"moe", "output", "insights"}, eval_options, o.panda_eval, "eval.panda");
  }
  section("report", "report", {"run-dir"}, report_options, o.report);
  const MpiWorld& world = mpi_world();
  o.config_text = mpi_bcast_string(world, world.is_root() ? read_text(o.config) : "");
  return o;
}

Subcommand run_subcommand() {
  return {"run",
          "Run the pipeline from one INI config in a run directory, skipping complete stages\n\n"
          "Stages: [bank-build,] score, select-experts, embed, select-data, [soft-prompt,] train (the MoE),\n"
          "eval, [panda-learn, eval-panda,] report. soft-prompt (ProMoT) runs when the config has a\n"
          "[train.prompt] section: a soft prompt trained on the K-shot set, then frozen before every\n"
          "sequence of train and eval. With a [panda] section, panda-learn and eval-panda run after\n"
          "eval (PANDA): the MoE's preferences on the K-shot set explained by an LLM (insights.h5),\n"
          "then the base model evaluated with the nearest insights before each question ([eval.panda];\n"
          "eval_panda.h5).\n"
          "The config needs model, kshot, test, corpus, answer-format and [score] bank (or --bank-build);\n"
          "top-level keys go to every stage that has the option, a [stage] section to that stage alone.\n"
          "kmoe wires outputs to inputs inside --run-dir. A commented example: docs/run.example.ini.",
          [](po::options_description& d, po::positional_options_description& p) {
            d.add_options()("run-dir", po::value<std::string>()->required()->value_name("DIR"),
                            "the run directory: every artifact, run.json and the report")(
                "bank-build", po::bool_switch(), "build the LoRA bank (RUN_DIR/bank) from the corpus first")(
                "from", po::value<std::string>()->value_name("STAGE"), "force this stage and the later ones")(
                "only", po::value<std::string>()->value_name("STAGE"),
                "run (forced) just this stage; its inputs must exist")(
                "to", po::value<std::string>()->value_name("STAGE"), "stop after this stage")(
                "force", po::bool_switch(), "force every stage")("dry-run", po::bool_switch(),
                                                                 "print the stages that would run and exit");
            p.add("config", 1);
          },
          [](const po::variables_map& vm) { return stage_exit(pipeline_run(mpi_world(), pipeline_options(vm))); }};
}

}  // namespace kmoe
