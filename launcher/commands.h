// The subcommand table of the kmoe executable, and the CLI side of every stage: for each
// stage, `NAME_subcommand()` (its options, with the defaults of the stage's options struct)
// and `NAME_options(vm)` (the parsed options into that struct), which `kmoe run` also uses
// on each stage's section of the config. They live in launcher/commands/ (one file per
// stage folder); the stage functions themselves know nothing of command lines.
#pragma once

#include <vector>

#include "launcher/cli.h"

namespace kmoe {

struct ScoringFlags;
struct ScoreOptions;
struct EvalOptions;
struct InsightFlags;
struct PandaLearnOptions;
struct GenerateStageOptions;
struct ReportOptions;
struct SuiteOptions;
struct SelectExpertsOptions;
struct EmbedOptions;
struct SelectDataOptions;
struct TrainOptions;
struct BankBuildOptions;
struct InitModelOptions;

// launcher/commands/score.cpp: score, and the options score and eval share.
void scoring_flags_add(po::options_description& d, const ScoringFlags& defaults);
ScoringFlags scoring_flags(const po::variables_map& vm);
ScoreOptions score_options(const po::variables_map& vm);
Subcommand score_subcommand();

// launcher/commands/evaluator.cpp
EvalOptions eval_options(const po::variables_map& vm);
Subcommand eval_subcommand();
PandaLearnOptions panda_learn_options(const po::variables_map& vm);
Subcommand panda_subcommand();
// PANDA's retrieval options, which eval and generate share.
void insight_flags_add(po::options_description& d, const InsightFlags& defaults);
InsightFlags insight_flags(const po::variables_map& vm);
GenerateStageOptions generate_options(const po::variables_map& vm);
Subcommand generate_subcommand();
ReportOptions report_options(const po::variables_map& vm);
Subcommand report_subcommand();
SuiteOptions suite_options(const po::variables_map& vm);
Subcommand suite_subcommand();

// launcher/commands/selection.cpp
SelectExpertsOptions select_experts_options(const po::variables_map& vm);
Subcommand select_experts_subcommand();
EmbedOptions embed_options(const po::variables_map& vm);
Subcommand embed_subcommand();
SelectDataOptions select_data_options(const po::variables_map& vm);
Subcommand select_data_subcommand();

// launcher/commands/trainer.cpp: train, bank build, init-model
TrainOptions train_options(const po::variables_map& vm);
Subcommand train_subcommand();
BankBuildOptions bank_build_options(const po::variables_map& vm);
Subcommand bank_subcommand();
Subcommand dmt_subcommand();
InitModelOptions init_model_options(const po::variables_map& vm);
Subcommand init_model_subcommand();

// launcher/info.cpp, launcher/pipeline.cpp, launcher/demo.cpp
Subcommand info_subcommand();
Subcommand run_subcommand();
Subcommand demo_subcommand();

// In pipeline order, after the two that are not stages.
const std::vector<Subcommand>& commands_table();

}  // namespace kmoe
