// Answer and reasoning perplexities of the scorer (scoring_prepare + scoring_run, the code
// `kmoe score` runs per unit) against transformers + PEFT on the same Alpaca prompts, for
// the base and three adapters (scoring_reference.py). The prompt strings and their token
// ids must match python's too, so a template drift cannot hide behind matching numbers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/text/kshot.h"
#include "data/formats/model_files.h"
#include "data/formats/peft_adapter.h"
#include "data/text/prompt_format.h"
#include "evaluator/bank_scoring.h"
#include "model/llama.h"
#include "model/lora.h"

namespace kmoe {
namespace {

std::string scoring_dir() {
  const char* d = std::getenv("KMOE_PARITY_DIR");
  if (!d) throw std::runtime_error("KMOE_PARITY_DIR is not set; run through ctest or set it");
  return std::string(d) + "/scoring";
}

TEST(ScoringParity, AnswerAndReasoningPerplexityMatchPeft) {
  const std::string dir = scoring_dir();
  nlohmann::json refs;
  std::ifstream(dir + "/refs.json") >> refs;
  const auto examples = kshot_load(dir + "/kshot.jsonl");
  ModelFiles files = model_files_load(dir + "/model");
  const LlamaModel model = llama_from_weights(files.config, std::move(files.weights), torch::kCPU, torch::kFloat32);
  ScoringOptions options;
  options.max_new_tokens = 0;
  options.batch_size = 3;  // several lengths per batch: padding must not change a row
  const auto items = scoring_prepare(examples, *files.tokenizer, options, dir + "/kshot.jsonl");
  ASSERT_EQ(items.size(), refs["prompts"].size());
  for (size_t i = 0; i < examples.size(); ++i) {
    EXPECT_EQ(prompt_render(options.prompt, examples[i]), refs["prompts"][i].get<std::string>()) << i;
    EXPECT_EQ(items[i].prompt_ids, refs["prompt_ids"][i].get<std::vector<int64_t>>()) << i;
  }
  LoraSet lora(files.config);
  int checked = 0;
  for (const auto& [name, rows] : refs["scores"].items()) {
    const LinearHook* hook = nullptr;
    if (name != "base") {
      lora.add(peft_adapter_load(dir + "/adapters/" + name, files.config, name));
      lora.activate(name);
      hook = &lora;
    }
    const auto scores = scoring_run(model, *files.tokenizer, items, options, hook);
    for (size_t i = 0; i < scores.size(); ++i) {
      const double ppl = rows[i]["ppl"], ppl_r = rows[i]["ppl_reasoning"], nll = rows[i]["nll"];
      EXPECT_LT(std::abs(scores[i].ppl - ppl) / ppl, 1e-4) << name << " example " << i;
      EXPECT_LT(std::abs(scores[i].ppl_reasoning - ppl_r) / ppl_r, 1e-4) << name << " example " << i;
      EXPECT_LT(std::abs(scores[i].nll - nll) / nll, 1e-4) << name << " example " << i;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4 * 7);
}

}  // namespace
}  // namespace kmoe
