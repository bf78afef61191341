// `kmoe eval`, `kmoe generate`, `kmoe report` and `kmoe suite` on the command line: the
// stages of evaluator/ (score is in score.cpp).
#include "evaluator/eval_command.h"
#include "evaluator/generate.h"
#include "evaluator/panda.h"
#include "evaluator/report.h"
#include "evaluator/task_suite_command.h"
#include "launcher/commands.h"

namespace kmoe {

EvalOptions eval_options(const po::variables_map& vm) {
  EvalOptions o;
  cli_get(vm, "model", o.model);
  cli_get(vm, "test", o.test);
  cli_get(vm, "base", o.base);
  cli_get(vm, "adapters", o.adapters);
  cli_get(vm, "moe", o.moe);
  cli_get(vm, "output", o.output);
  cli_get(vm, "task", o.task);
  cli_get(vm, "json", o.json);
  cli_get(vm, "force", o.force);
  o.scoring = scoring_flags(vm);
  o.insights = insight_flags(vm);
  return o;
}

void insight_flags_add(po::options_description& d, const InsightFlags& def) {
  d.add_options()("insights", po::value<std::string>()->value_name("FILE"),
                  "PANDA: an insight pool (kmoe panda learn); the rows nearest to each question\n"
                  "(cosine of the pool's encoder) are put before it")(
      "insight-k", po::value<int64_t>()->default_value(def.k), "pool rows per question (PANDA: 6 classification, 1 interactive)")(
      "insight-mode", po::value<std::string>()->default_value(def.mode),
      "insights (PANDA), examples (the nearest rows with their answers, no insight)\n"
      "or random (random rows with their answers: plain few-shot)")(
      "insight-template", po::value<std::string>()->value_name("FILE"),
      "the block ({items}, {question}), a line '----', the item ({key}, {insight},\n"
      "{answer}, {preferred}, {rejected}); default in the README")(
      "insight-encoder", po::value<std::string>()->value_name("PATH"),
      "the pool's encoder at another path (it must be the same encoder)")(
      "insight-seed", po::value<uint64_t>()->default_value(def.seed), "seed of --insight-mode random");
}

InsightFlags insight_flags(const po::variables_map& vm) {
  InsightFlags f;
  cli_get(vm, "insights", f.pool);
  cli_get(vm, "insight-k", f.k);
  cli_get(vm, "insight-mode", f.mode);
  cli_get(vm, "insight-template", f.template_file);
  cli_get(vm, "insight-encoder", f.encoder_model);
  cli_get(vm, "insight-seed", f.seed);
  return f;
}

Subcommand eval_subcommand() {
  return {
      "eval", "Task metrics (accuracy, macro-F1, option log-likelihood accuracy) of models on a test set -> eval.h5",
      [](po::options_description& d, po::positional_options_description&) {
        const EvalOptions def;
        d.add_options()("model", po::value<std::string>()->required()->value_name("PATH"),
                        "base model: HF folder or .gguf")("test",
                                                          po::value<std::string>()->required()->value_name("FILE"),
                                                          "test examples (JSONL, the K-shot format)")(
            "base", po::bool_switch(), "evaluate the base model (row 'base')")(
            "adapters", po::value<std::vector<std::string>>()->multitoken()->value_name("DIR..."),
            "PEFT adapter folders (row = folder name); a folder of adapters or a list file adds each")(
            "moe", po::value<std::vector<std::string>>()->multitoken()->value_name("[NAME=]FILE..."),
            "trained MoE files (moe.h5; row = file stem or NAME)")(
            "output", po::value<std::string>()->default_value(def.output), "the eval artifact")(
            "task", po::value<std::string>()->value_name("NAME"), "task name recorded (default: the test file stem)")(
            "json", po::bool_switch(), "print the summary as JSON instead of a table")(
            "force", po::bool_switch(), "rerun even if the artifact is complete");
        scoring_flags_add(d, def.scoring);
        insight_flags_add(d, def.insights);
      },
      [](const po::variables_map& vm) { return stage_exit(eval_stage(mpi_world(), eval_options(vm))); }};
}

GenerateStageOptions generate_options(const po::variables_map& vm) {
  GenerateStageOptions o;
  cli_get(vm, "model", o.model);
  cli_get(vm, "adapter", o.adapter);
  cli_get(vm, "soft-prompt", o.soft_prompt);
  cli_get(vm, "prompt", o.prompts);
  cli_get(vm, "raw", o.raw);
  cli_get(vm, "max-new-tokens", o.max_new_tokens);
  cli_get(vm, "temperature", o.temperature);
  cli_get(vm, "top-p", o.top_p);
  cli_get(vm, "top-k", o.top_k);
  cli_get(vm, "seed", o.seed);
  cli_get(vm, "device", o.device);
  cli_get(vm, "dtype", o.dtype);
  cli_get(vm, "threads", o.threads);
  o.insights = insight_flags(vm);
  return o;
}

Subcommand generate_subcommand() {
  return {"generate", "Generate replies of a model (HF folder or .gguf), optionally with a PEFT adapter",
          [](po::options_description& d, po::positional_options_description& p) {
            const GenerateStageOptions def;
            d.add_options()("model", po::value<std::string>()->required()->value_name("PATH"),
                            "HF model folder or .gguf file")("adapter", po::value<std::string>()->value_name("DIR"),
                                                             "PEFT LoRA adapter folder")(
                "soft-prompt", po::value<std::string>()->value_name("DIR"),
                "soft prompt (PEFT prompt-tuning folder) put before each prompt")(
                "prompt", po::value<std::vector<std::string>>()->required()->value_name("TEXT"),
                "prompt (repeat for several; also positional)")("raw", po::bool_switch(),
                                                                "do not wrap prompts in the model's chat template")(
                "max-new-tokens", po::value<int>()->default_value(def.max_new_tokens), "tokens to generate at most")(
                "temperature", cli_double(def.temperature), "0 = greedy")("top-p", cli_double(def.top_p),
                                                                          "nucleus sampling threshold")(
                "top-k", po::value<int>()->default_value(def.top_k), "sample among the k most likely (0 = all)")(
                "seed", po::value<uint64_t>()->default_value(def.seed), "sampling seed")(
                "device", po::value<std::string>()->default_value(def.device), "auto, cpu or cuda")(
                "dtype", po::value<std::string>()->default_value(def.dtype),
                "auto, float32 or bfloat16 (auto: bfloat16 on cuda, float32 on the CPU)")(
                "threads", po::value<int>(), "CPU threads (default: libtorch's)");
            insight_flags_add(d, def.insights);
            p.add("prompt", -1);
          },
          [](const po::variables_map& vm) { return stage_exit(generate_stage(mpi_world(), generate_options(vm))); }};
}

PandaLearnOptions panda_learn_options(const po::variables_map& vm) {
  PandaLearnOptions o;
  cli_get(vm, "expert-model", o.expert_model);
  cli_get(vm, "expert-adapter", o.expert_adapter);
  cli_get(vm, "expert-moe", o.expert_moe);
  cli_get(vm, "llm", o.llm);
  cli_get(vm, "data", o.data);
  cli_get(vm, "output", o.output);
  cli_get(vm, "task", o.task);
  cli_get(vm, "pairs", o.pairs);
  cli_get(vm, "candidates", o.candidates);
  cli_get(vm, "temperature", o.temperature);
  cli_get(vm, "seed", o.seed);
  cli_get(vm, "max-insight-tokens", o.max_insight_tokens);
  cli_get(vm, "insight-prompt", o.insight_prompt);
  cli_get(vm, "encoder", o.encoder.kind);
  cli_get(vm, "encoder-model", o.encoder.model);
  cli_get(vm, "encoder-pooling", o.encoder.pooling);
  cli_get(vm, "encoder-prefix", o.encoder.prefix);
  cli_get(vm, "encoder-max-tokens", o.encoder.max_tokens);
  cli_get(vm, "force", o.force);
  o.scoring = scoring_flags(vm);
  return o;
}

Subcommand panda_subcommand() {
  return {"panda",
          "PANDA (kmoe panda learn): an expert's preferences on training examples, explained by an LLM\n"
          "-> insights.h5 (keys, pairs, insights, key embeddings); kmoe eval --insights uses them",
          [](po::options_description& d, po::positional_options_description& p) {
            const PandaLearnOptions def;
            d.add_options()("action", po::value<std::string>()->required(), "learn")(
                "expert-model", po::value<std::string>()->required()->value_name("PATH"),
                "the expert's base model: HF folder or .gguf")(
                "expert-adapter", po::value<std::string>()->value_name("DIR"), "the expert's PEFT LoRA adapter")(
                "expert-moe", po::value<std::string>()->value_name("FILE"), "or the expert's trained moe.h5")(
                "llm", po::value<std::string>()->required()->value_name("PATH"),
                "the model that writes the insights: HF folder or .gguf")(
                "data", po::value<std::string>()->required()->value_name("FILE"),
                "training examples (JSONL, the K-shot format)")(
                "output", po::value<std::string>()->default_value(def.output), "the insight pool")(
                "task", po::value<std::string>()->value_name("NAME"), "task name recorded (default: the data file stem)")(
                "pairs", po::value<std::string>()->default_value(def.pairs),
                "top2 (the expert's top answer against its second) or top3 (against its third)")(
                "candidates", po::value<int64_t>()->default_value(def.candidates),
                "free-form examples: replies sampled from the expert and ranked by it")(
                "temperature", cli_double(def.temperature), "their sampling temperature")(
                "seed", po::value<uint64_t>()->default_value(def.seed), "their sampling seed")(
                "max-insight-tokens", po::value<int64_t>()->default_value(def.max_insight_tokens),
                "the LLM's insight length at most")(
                "insight-prompt", po::value<std::string>()->value_name("FILE"),
                "the question to the LLM ({question}, {preferred}, {rejected}); default in the README")(
                "encoder", po::value<std::string>()->default_value(def.encoder.kind),
                "the keys' sentence encoder: bert or decoder (as kmoe embed)")(
                "encoder-model", po::value<std::string>()->required()->value_name("PATH"),
                "bert: sentence-transformers folder (all-MiniLM-L6-v2); decoder: HF folder or .gguf")(
                "encoder-pooling", po::value<std::string>(), "mean or cls (bert; default: the folder's)")(
                "encoder-prefix", po::value<std::string>(), "instruction prefix for every key")(
                "encoder-max-tokens", po::value<int64_t>()->default_value(def.encoder.max_tokens),
                "truncate longer keys (0: the encoder's default)")(
                "force", po::bool_switch(), "rerun even if the artifact is complete");
            scoring_flags_add(d, def.scoring);
            p.add("action", 1);
          },
          [](const po::variables_map& vm) {
            const std::string action = vm["action"].as<std::string>();
            if (action != "learn") throw UsageError("kmoe panda: unknown action '" + action + "' (valid: learn)");
            return stage_exit(panda_learn_stage(mpi_world(), panda_learn_options(vm)));
          }};
}

ReportOptions report_options(const po::variables_map& vm) {
  ReportOptions o;
  cli_get(vm, "run-dir", o.run_dir);
  cli_get(vm, "compare", o.compare);
  cli_get(vm, "output", o.output);
  cli_get(vm, "reference", o.reference);
  return o;
}

Subcommand report_subcommand() {
  return {"report",
          "Write RUN_DIR/report.md and PNG plots from the run's artifacts, or compare the evaluations of "
          "several runs (--compare)",
          [](po::options_description& d, po::positional_options_description& p) {
            d.add_options()("run-dir", po::value<std::string>()->value_name("DIR"),
                            "the run directory holding scores.h5, experts.h5, data_selection.h5, moe.h5, eval.h5 "
                            "(also positional)")(
                "compare", po::value<std::vector<std::string>>()->multitoken()->value_name("[LABEL=]PATH..."),
                "compare runs instead: run directories (their eval*.h5) or eval .h5 files; runs of one task "
                "(K-shot draws, seeds) give mean +- sd, and the reference minus each row gets a paired-bootstrap "
                "95% interval over the examples and a 95% t interval over the runs")("output", po::value<std::string>()->value_name("DIR"),
                                "with --compare: where compare.md, compare.json and compare.png are written")(
                "reference", po::value<std::string>()->value_name("ROW"),
                "with --compare: the row compared with every other (default: moe, when a run has it)");
            p.add("run-dir", 1);
          },
          [](const po::variables_map& vm) { return stage_exit(report_stage(mpi_world(), report_options(vm))); }};
}

SuiteOptions suite_options(const po::variables_map& vm) {
  SuiteOptions o;
  cli_get(vm, "output", o.output);
  cli_get(vm, "seed", o.seed);
  cli_get(vm, "samples-per-dataset", o.samples_per_dataset);
  cli_get(vm, "kshot", o.kshot);
  cli_get(vm, "test", o.test);
  cli_get(vm, "validation", o.validation);
  cli_get(vm, "kshot-draws", o.kshot_draws);
  cli_get(vm, "pretrain-docs", o.pretrain_docs);
  cli_get(vm, "force", o.force);
  return o;
}

Subcommand suite_subcommand() {
  return {"suite", "Generate the synthetic task suite: open datasets, K-shot/test tasks, pretraining text",
          [](po::options_description& d, po::positional_options_description&) {
            const SuiteOptions def;
            d.add_options()("output", po::value<std::string>()->required()->value_name("DIR"),
                            "the suite folder (written as DIR.partial, then renamed)")(
                "seed", po::value<int64_t>()->default_value(def.seed), "PRNG seed; the same seed gives the same bytes")(
                "samples-per-dataset", po::value<int64_t>()->default_value(def.samples_per_dataset),
                "samples in each open dataset")("kshot", po::value<int64_t>()->default_value(def.kshot),
                                                "K-shot examples per target task")(
                "test", po::value<int64_t>()->default_value(def.test), "held-out test examples per target task")(
                "validation", po::value<int64_t>()->default_value(def.validation),
                "validation examples per target task (for choosing sizes and hyper-parameters)")(
                "kshot-draws", po::value<int64_t>()->default_value(def.kshot_draws),
                "disjoint K-shot sets per target task: kshot.jsonl, kshot-1.jsonl, ...")(
                "pretrain-docs", po::value<int64_t>()->default_value(def.pretrain_docs), "documents in pretrain.jsonl")(
                "force", po::bool_switch(), "replace an existing suite made with other options");
          },
          [](const po::variables_map& vm) { return stage_exit(suite_stage(mpi_world(), suite_options(vm))); }};
}

}  // namespace kmoe
