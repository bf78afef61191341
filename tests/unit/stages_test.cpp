// Every stage function driven in-process, as `kmoe run` and `kmoe demo` call them: on a tiny
// generated suite and a tiny random model, each test checks the outcome (ran, then skipped on
// a second identical call), the artifact's contents, and what a changed option does. The
// shell tests keep the command line, MPI and kill behaviour; these keep the stage contract.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/store/artifact.h"
#include "evaluator/bank_scoring.h"
#include "evaluator/eval_command.h"
#include "evaluator/report.h"
#include "evaluator/task_suite_command.h"
#include "launcher/commands.h"
#include "launcher/demo.h"
#include "launcher/pipeline.h"
#include "selection/embedding.h"
#include "selection/expert_selection.h"
#include "selection/sim_div.h"
#include "temp_dir.h"
#include "trainer/init_model_command.h"
#include "trainer/train_command.h"

namespace kmoe {
namespace {

namespace fs = std::filesystem;

int64_t jsonl_lines(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

// A tiny world: a suite with 8 samples per open dataset, a random 2-layer model, and (when
// asked) a bank of two LoRA adapters trained for one step.
struct TinyWorld {
  std::string suite, model, bank, kshot, test;
  std::vector<std::string> corpus;  // two open datasets
};

// One optimizer step of two short chat examples: what every tiny training here uses.
TrainingFlags one_step() {
  TrainingFlags f;
  f.prompt_format = "chat";  // byte-level: ChatML is shorter than Alpaca's preamble
  f.max_steps = 1;
  f.global_batch = 2;
  f.micro_batch = 2;
  f.lora_r = 2;
  f.max_len = 256;
  f.checkpoint_every = 0;
  return f;
}

TinyWorld tiny_world(const testing::TempDir& dir, bool with_bank) {
  const MpiWorld& world = mpi_world();
  TinyWorld t;
  SuiteOptions suite;
  suite.output = t.suite = dir / "suite";
  suite.samples_per_dataset = 8;
  suite.kshot = 4;
  suite.test = 4;
  suite.pretrain_docs = 8;
  suite_stage(world, suite);
  t.corpus = {t.suite + "/open/yesno.even.jsonl", t.suite + "/open/arith.add.jsonl"};
  t.kshot = t.suite + "/tasks/yesno/kshot.jsonl";
  t.test = t.suite + "/tasks/yesno/test.jsonl";

  InitModelOptions init;
  init.output = t.model = dir / "model";
  init.hidden = 32;
  init.layers = 2;
  init.heads = 4;
  init.kv_heads = 2;
  init.intermediate = 64;
  init.max_position = 256;
  init_model_stage(world, init);

  if (with_bank) {
    BankBuildOptions bank;
    bank.model = t.model;
    bank.data = t.corpus;
    bank.output_dir = t.bank = dir / "bank";
    bank.training = one_step();
    bank_build_stage(world, bank);
  }
  return t;
}

TEST(Stages, SuiteAndInitModelWriteOnceThenSkip) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  SuiteOptions suite;
  suite.output = dir / "suite";
  suite.samples_per_dataset = 8;
  suite.kshot = 4;
  suite.test = 4;
  suite.pretrain_docs = 8;
  const StageOutcome first = suite_stage(world, suite);
  EXPECT_FALSE(first.skipped);
  EXPECT_EQ(jsonl_lines(dir / "suite/tasks/yesno/kshot.jsonl"), 4);
  EXPECT_EQ(jsonl_lines(dir / "suite/tasks/yesno/test.jsonl"), 4);
  EXPECT_TRUE(suite_stage(world, suite).skipped);
  suite.kshot = 5;  // other options over a kmoe suite: refused without force
  EXPECT_ANY_THROW(suite_stage(world, suite));

  InitModelOptions init;
  init.output = dir / "model";
  init.hidden = 32;
  init.layers = 2;
  init.intermediate = 64;
  EXPECT_FALSE(init_model_stage(world, init).skipped);
  EXPECT_TRUE(fs::exists(dir / "model/model.safetensors"));
  EXPECT_TRUE(init_model_stage(world, init).skipped);
  init.hidden = 0;
  EXPECT_THROW(init_model_stage(world, init), UsageError);
}

TEST(Stages, BankBuildThenScoreThenSelectExperts) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  const TinyWorld t = tiny_world(dir, true);
  const auto bank = ArtifactReader(t.bank + "/bank.h5").read_strings("adapter_paths");
  ASSERT_EQ(bank.size(), 2u);
  EXPECT_TRUE(fs::exists(bank[0] + "/adapter_model.safetensors"));

  ScoreOptions score;
  score.model = t.model;
  score.kshot = t.kshot;
  score.bank = t.bank;
  score.output = dir / "scores.h5";
  score.scoring.answer_format = "yesno";
  score.scoring.max_new_tokens = 2;
  const StageOutcome ran = score_stage(world, score);
  EXPECT_FALSE(ran.skipped);
  ASSERT_EQ(ran.outputs, std::vector<std::string>{score.output});
  ArtifactReader scores(score.output);
  EXPECT_EQ(scores.read_strings("adapters"), (std::vector<std::string>{"base", "arith.add", "yesno.even"}));
  EXPECT_EQ(scores.read_strings("samples").size(), 4u);
  EXPECT_TRUE(score_stage(world, score).skipped);
  score.scoring.batch_size = 3;  // an option that is in the provenance: runs again
  EXPECT_FALSE(score_stage(world, score).skipped);
  score.bank.clear();  // neither a bank nor a mixture: the base model alone
  score.output = dir / "base_scores.h5";
  EXPECT_FALSE(score_stage(world, score).skipped);
  EXPECT_EQ(ArtifactReader(score.output).read_strings("adapters"), std::vector<std::string>{"base"});

  SelectExpertsOptions select;
  select.scores = dir / "scores.h5";
  select.output = dir / "experts.h5";
  select.m = 2;
  select.n = 1;
  EXPECT_FALSE(select_experts_stage(world, select).skipped);
  EXPECT_EQ(ArtifactReader(select.output).read_strings("chosen_paths").size(), 1u);
  EXPECT_TRUE(select_experts_stage(world, select).skipped);
  select.n = 3;  // more experts than candidates
  EXPECT_THROW(select_experts_stage(world, select), UsageError);
}

TEST(Stages, EmbedThenSelectData) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  const TinyWorld t = tiny_world(dir, false);
  EmbedOptions embed;
  embed.corpus = t.corpus;
  embed.kshot = t.kshot;
  embed.output = dir / "embeddings.h5";
  embed.encoder = "decoder";
  embed.encoder_model = t.model;
  embed.block_rows = 5;
  EXPECT_FALSE(embed_stage(world, embed).skipped);
  EXPECT_TRUE(embed_stage(world, embed).skipped);

  SelectDataOptions select;
  select.embeddings = embed.output;
  select.corpus = t.corpus;
  select.kshot = t.kshot;
  select.c = 3;
  select.tau = 0.999999;
  select.output_dir = dir / "run";
  fs::create_directories(select.output_dir);
  ::testing::internal::CaptureStderr();
  const StageOutcome ran = select_data_stage(world, select);
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("kept only"), std::string::npos);
  EXPECT_FALSE(ran.skipped);
  EXPECT_EQ(jsonl_lines(dir / "run/selected.jsonl"), 3 + 4);  // C open rows + the K-shot set
  EXPECT_TRUE(select_data_stage(world, select).skipped);
  fs::remove(dir / "run/selected.jsonl");  // an extra output lost: the stage is not complete
  EXPECT_FALSE(select_data_stage(world, select).skipped);
  select.corpus = {t.corpus[0]};  // not the files the embeddings were made from
  EXPECT_ANY_THROW(select_data_stage(world, select));

  // tau = -1 drops every row after the first: fewer than C kept is a warning that says why.
  select.corpus = t.corpus;
  select.tau = -1;
  select.output_dir = dir / "run_tau";
  fs::create_directories(select.output_dir);
  ::testing::internal::CaptureStderr();
  select_data_stage(world, select);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("kept only 1 rows where --c 3 asked for 3"), std::string::npos) << err;
  EXPECT_NE(err.find("--tau -1"), std::string::npos) << err;
  EXPECT_NE(err.find("encoder 'decoder'"), std::string::npos) << err;
}

TEST(Stages, TrainLoraFullAndMoe) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  const TinyWorld t = tiny_world(dir, true);
  const auto bank = ArtifactReader(t.bank + "/bank.h5").read_strings("adapter_paths");
  TrainOptions train;
  train.model = t.model;
  train.data = {t.kshot};
  train.training = one_step();

  train.mode = "lora";
  train.output = dir / "lora";
  EXPECT_FALSE(train_stage(world, train).skipped);
  EXPECT_TRUE(fs::exists(dir / "lora/adapter_config.json"));
  EXPECT_TRUE(fs::exists(dir / "lora/train.h5"));
  EXPECT_TRUE(train_stage(world, train).skipped);

  train.mode = "full";
  train.output = dir / "full";
  EXPECT_FALSE(train_stage(world, train).skipped);
  EXPECT_TRUE(fs::exists(dir / "full/model.safetensors"));
  EXPECT_TRUE(train_stage(world, train).skipped);

  train.mode = "moe";
  train.output = dir / "moe.h5";
  train.adapters = bank;
  EXPECT_FALSE(train_stage(world, train).skipped);
  EXPECT_TRUE(ArtifactReader(train.output).has("moe"));
  EXPECT_TRUE(train_stage(world, train).skipped);
  train.adapters = {bank[0]};  // a mixture needs two experts
  EXPECT_THROW(train_stage(world, train), UsageError);
  train.mode = "sideways";
  EXPECT_THROW(train_stage(world, train), UsageError);
}

// --lora-targets all-linear adapts the seven projections, as PEFT's "all-linear" does.
TEST(Stages, TrainLoraAllLinear) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  const TinyWorld t = tiny_world(dir, false);
  TrainOptions train;
  train.model = t.model;
  train.data = {t.kshot};
  train.mode = "lora";
  train.output = dir / "lora";
  train.training = one_step();
  train.training.lora_targets = "all-linear";
  EXPECT_FALSE(train_stage(world, train).skipped);
  std::ifstream in(dir / "lora/adapter_config.json");
  auto targets = nlohmann::json::parse(in).at("target_modules").get<std::vector<std::string>>();
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets,
            (std::vector<std::string>{"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
  train.training.lora_targets = "q_proj,lm_head";
  train.output = dir / "bad";
  EXPECT_THROW(train_stage(world, train), UsageError);
}

// bank build --no-index trains the adapters and writes no bank.h5 (a job array's slice); a
// later call without it over every dataset trains nothing again and lists them all.
TEST(Stages, BankBuildNoIndexThenIndex) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  const TinyWorld t = tiny_world(dir, false);
  BankBuildOptions bank;
  bank.model = t.model;
  bank.output_dir = dir / "bank";
  bank.training = one_step();
  bank.no_index = true;
  for (const auto& data : t.corpus) {
    bank.data = {data};
    EXPECT_EQ(bank_build_stage(world, bank).exit_code, 0);
  }
  EXPECT_FALSE(fs::exists(dir / "bank/bank.h5"));
  const auto first = fs::last_write_time(dir / "bank/yesno.even/adapter_model.safetensors");
  bank.no_index = false;
  bank.data = t.corpus;
  EXPECT_FALSE(bank_build_stage(world, bank).skipped);
  EXPECT_EQ(ArtifactReader(dir / "bank/bank.h5").read_strings("adapters"),
            (std::vector<std::string>{"yesno.even", "arith.add"}));
  EXPECT_EQ(fs::last_write_time(dir / "bank/yesno.even/adapter_model.safetensors"), first);
}

TEST(Stages, EvalRowsAndSkip) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  const TinyWorld t = tiny_world(dir, true);
  EvalOptions eval;
  eval.model = t.model;
  eval.test = t.test;
  eval.base = true;
  eval.adapters = {t.bank};
  eval.output = dir / "eval.h5";
  eval.scoring.answer_format = "yesno";
  eval.scoring.max_new_tokens = 2;
  EXPECT_FALSE(eval_stage(world, eval).skipped);
  const auto summary = eval_summary(eval.output);
  ASSERT_EQ(summary.at("models").size(), 3u);
  EXPECT_EQ(summary.at("models")[0].at("name"), "base");
  EXPECT_EQ(summary.at("samples"), 4);
  EXPECT_TRUE(eval_stage(world, eval).skipped);
  eval.base = false;
  eval.adapters.clear();
  EXPECT_THROW(eval_stage(world, eval), UsageError);
}

// The pipeline as `kmoe run` drives it: every stage ran, then every stage but the report
// skipped; --only of a stage whose inputs are missing is a usage error.
TEST(Stages, PipelineRunsThenSkipsEveryStage) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  const TinyWorld t = tiny_world(dir, true);
  PipelineOptions p;
  p.run_dir = dir / "run";
  p.score.model = t.model;
  p.score.kshot = t.kshot;
  p.score.bank = t.bank;
  p.score.scoring.answer_format = "yesno";
  p.score.scoring.max_new_tokens = 2;
  p.select_experts.m = 2;
  p.select_experts.n = 2;
  p.embed.corpus = p.select_data.corpus = t.corpus;
  p.embed.kshot = p.select_data.kshot = t.kshot;
  p.embed.encoder_model = t.model;
  p.select_data.c = 4;
  p.train.model = t.model;
  p.train.training.prompt_format = "chat";
  p.train.training.max_steps = 1;
  p.train.training.global_batch = 2;
  p.train.training.micro_batch = 2;
  p.train.training.max_len = 256;
  p.eval.model = t.model;
  p.eval.test = t.test;
  p.eval.scoring = p.score.scoring;

  PipelineOptions only = p;
  only.only = "train";
  EXPECT_THROW(pipeline_run(world, only), UsageError);

  EXPECT_EQ(pipeline_run(world, p).exit_code, 0);
  const auto status = [&] {
    std::ifstream in(p.run_dir + "/run.json");
    const auto record = nlohmann::json::parse(in);
    std::string s = record.at("status").get<std::string>();
    for (const auto& stage : record.at("stages")) s.append(" ").append(stage.at("status").get<std::string>());
    return s;
  };
  EXPECT_EQ(status(), "complete ran ran ran ran ran ran ran");
  // The report of a one-step training: no loss curve of one point, a line saying so, and
  // report.html beside report.md.
  EXPECT_FALSE(fs::exists(p.run_dir + "/loss_curve.png"));
  EXPECT_TRUE(fs::exists(p.run_dir + "/report.html"));
  {
    std::ifstream md(p.run_dir + "/report.md");
    const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("One optimizer step: no loss curve to draw."), std::string::npos) << text;
  }
  const auto chosen = ArtifactReader(p.run_dir + "/experts.h5").read_strings("chosen_paths");
  std::ifstream in(p.run_dir + "/run.json");
  const auto train = nlohmann::json::parse(in).at("stages")[4];
  EXPECT_EQ(train.at("wiring").at("adapters").get<std::vector<std::string>>(), chosen);

  EXPECT_EQ(pipeline_run(world, p).exit_code, 0);
  EXPECT_EQ(status(), "complete skipped skipped skipped skipped skipped skipped ran");
}

// `kmoe demo` in-process on one task; then the run.ini it leaves for the user, read by the CLI
// layer as `kmoe run` reads it, configures the same stages: every one of them skips.
TEST(Stages, DemoAndTheRunIniItWritesAgree) {
  testing::TempDir dir;
  const MpiWorld& world = mpi_world();
  DemoOptions demo;
  demo.work_dir = demo.work_dir_as_given = dir / "demo";
  demo.tasks = {"yesno"};
  demo.profile = demo_profile("tiny");
  const StageOutcome outcome = demo_run(world, demo);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_TRUE(fs::exists(dir / "demo/demo.md"));
  const auto results = nlohmann::json::parse(std::ifstream(dir / "demo/demo_results.json"));
  EXPECT_EQ(results.at("tasks"), nlohmann::json::array({"yesno"}));

  const ParsedCommand run = cli_parse(commands_table(), {"run", dir / "demo/runs/yesno/draw0/run.ini"});
  PipelineOptions options = pipeline_options(run.vm);
  EXPECT_EQ(options.run_dir, dir / "demo/runs/yesno/draw0");
  options.to = "eval";
  pipeline_run(world, options);
  std::ifstream in(options.run_dir + "/run.json");
  for (const auto& stage : nlohmann::json::parse(in).at("stages")) {
    if (stage.at("status") != "not selected") {
      EXPECT_EQ(stage.at("status"), "skipped") << stage.dump();
    }
  }
}

}  // namespace
}  // namespace kmoe
