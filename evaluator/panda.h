// PANDA (METHOD.md §2; arXiv 2402.12835): adapting a model to a task without changing a
// weight. `kmoe panda learn` lets an expert (a base model with a PEFT adapter or a trained
// MoE) rank the answers to training examples, asks an LLM why the expert prefers its top
// answer to the runner-up, and stores each reply (the insight) with its retrieval key (the
// example's question) and the key's embedding in insights.h5. At inference (`kmoe eval
// --insights`) the K keys nearest to a query by cosine are retrieved and put before the
// question with their insights.
//
// Preferences. An example with choices: the expert's option log-likelihoods (Σ log p of
// the option text, as `kmoe score` computes them) rank the options; the pair is the top
// option against the second (--pairs top2) or the third (top3). A free-form example:
// --candidates replies sampled from the expert (seeded per example, so any rank draws the
// same), distinct texts ranked by the expert's log-likelihood of the reply (Σ log p of its
// tokens); an example whose candidates are all one text has no pair (has_pair 0, no insight).
// The LLM's reply is greedy (identical insights for any np) and at most
// --max-insight-tokens long; the LLM's chat template is applied when it has one.
//
// Work units: chunks of examples from the rank-0 queue, journalled (a killed run resumes);
// a unit's batches depend only on its chunk, so insights.h5 is the same for any np.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "data/encoders/encoder_load.h"
#include "data/encoders/sentence_encoder.h"
#include "data/store/artifact.h"
#include "data/text/kshot.h"
#include "evaluator/bank_scoring.h"  // ScoringFlags
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// The retrieval key of an example: the question as the model sees it (the instruction and
// the lettered choices), then its input, if any, after a blank line.
std::string panda_key(const KshotExample& example);

// The question put to the LLM for one pair; {question}, {preferred} and {rejected} are
// replaced. Overridable with --insight-prompt FILE.
extern const char* const kPandaInsightPrompt;

// `kmoe panda learn`: the options as the user gives them; the defaults are the command line's.
struct PandaLearnOptions {
  std::string expert_model;    // the expert's base model: HF folder or .gguf (required)
  std::string expert_adapter;  // a PEFT LoRA adapter on it ("": none)
  std::string expert_moe;      // or a trained moe.h5 on it ("": none)
  std::string llm;             // the model that writes insights: HF folder or .gguf (required)
  std::string data;            // training examples, JSONL in the K-shot format (required)
  std::string output = "insights.h5";
  std::string task;                 // recorded ("": the data file's stem)
  std::string pairs = "top2";       // top2 (top-1 vs top-2) or top3 (top-1 vs top-3)
  int64_t candidates = 4;           // free-form examples: replies sampled from the expert
  double temperature = 1.0;         // their sampling temperature
  uint64_t seed = 0;                // their sampling seed
  int64_t max_insight_tokens = 150;  // the LLM's reply length at most
  std::string insight_prompt;       // a file overriding kPandaInsightPrompt ("": the default)
  EncoderSpec encoder;              // the keys' encoder (the sentence encoder of `kmoe embed`)
  ScoringFlags scoring;             // the expert's prompt and answer formats, batches, chunks, device
  bool force = false;
};
// Collective. Writes `output` unless it is complete for these inputs and options.
StageOutcome panda_learn_stage(const MpiWorld& world, const PandaLearnOptions& options);

// insights.h5 as read back.
struct InsightPool {
  std::string path, task, pairs;
  std::vector<std::string> ids, keys, answers, preferred, rejected, insights;
  std::vector<float> preferred_score, rejected_score;
  std::vector<int64_t> has_pair;
  std::vector<float> key_embeddings;  // [size(), encoder.dim], row-major
  EncoderDescription encoder;
  int64_t size() const { return static_cast<int64_t>(keys.size()); }
};
// Throws naming the file when it is not a complete insights.h5.
InsightPool insight_pool_read(const std::string& path);

// What is put before the question: the insights of the retrieved keys (PANDA), the
// retrieved examples with their answers and no insight (few-shot by retrieval), or random
// examples with their answers (plain few-shot).
enum class InsightMode { insights, examples, random };
InsightMode insight_mode_parse(const std::string& name);  // throws std::invalid_argument
const char* insight_mode_name(InsightMode mode);

// The k usable rows of `keys` ([n, dim]) with the largest cosine to each query ([q, dim]),
// best first, ties to the lower row. Rows with usable[r] false are never returned.
std::vector<std::vector<int64_t>> insight_nearest(const at::Tensor& queries, const at::Tensor& keys, int64_t k,
                                                  const std::vector<bool>& usable);
// k distinct usable rows of n drawn for query `index` alone (mt19937_64 seeded by seed and
// index; a partial Fisher-Yates shuffle), so a query's draw does not depend on the others.
std::vector<int64_t> insight_random(int64_t n, int64_t k, const std::vector<bool>& usable, uint64_t seed,
                                    int64_t index);

// The prompt template: `block` holds {items} and {question}; `item`, repeated per retrieved
// row, holds any of {key}, {insight}, {answer}, {preferred}, {rejected}.
struct InsightTemplate {
  std::string block, item;
};
InsightTemplate insight_template_default(InsightMode mode);
// A template file: the block, then a line holding only "----", then the item. Throws
// naming the file when the separator or a required placeholder is missing.
InsightTemplate insight_template_read(const std::string& path);
// The new instruction: the block with the rendered items and the original question.
std::string insight_render(const InsightTemplate& tmpl, const std::string& question, const InsightPool& pool,
                           const std::vector<int64_t>& rows);

struct InsightPlan {
  std::vector<KshotExample> examples;  // the queries, each instruction rendered with its rows
  std::vector<int64_t> rows;           // [queries, k] pool rows used, row-major
  int64_t k = 0;
  int64_t excluded = 0;  // pool rows left out because their key is one of the queries'
  InsightMode mode = InsightMode::insights;
  InsightTemplate tmpl;
};
// Collective: every rank reads the pool; rank 0 loads its encoder, embeds the queries and
// picks the rows, which every rank then receives. A pool row whose key equals a query's
// key is never used, for any query. Throws (every rank) naming the pool when its encoder
// differs from the one given, or when fewer than k rows are usable.
InsightPlan insight_plan(const MpiWorld& world, const InsightFlags& flags, const std::vector<KshotExample>& queries,
                         const std::string& command);
// The pool, k, mode, template (and seed for mode random) into a stage's inputs and options, so
// a change of any re-runs the stage. Throws UsageError "kmoe COMMAND: ..." for a bad mode or
// template file.
void insight_spec_add(StageSpec& spec, const InsightFlags& flags, const std::string& command);
// The plan's rows ([queries, k], `insight_rows`) and its mode and exclusions (root attributes).
void insight_plan_write(ArtifactWriter& w, const InsightPlan& plan);

}  // namespace kmoe
