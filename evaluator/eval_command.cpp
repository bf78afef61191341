// See eval_command.h. Every rank loads the base once and keeps one model's hook resident (a
// LoraSet holding one adapter, or a MoeLora): units are numbered model-major, so a rank
// mostly draws units of the model it already holds. Metrics are computed once, from the
// journal, after all units are done; the table is printed from the committed artifact, so
// a skipped (already complete) eval prints the same table.
#include "evaluator/eval_command.h"

#include <torch/torch.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "data/formats/model_files.h"
#include "data/formats/moe_file.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/peft_prompt.h"
#include "data/store/artifact.h"
#include "evaluator/bank_scoring.h"
#include "evaluator/metrics.h"
#include "model/lora.h"
#include "model/moe_lora.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"
#include "runtime/unit_journal.h"
#include "runtime/work_units.h"

namespace kmoe {

namespace fs = std::filesystem;

std::vector<EvalModel> eval_models(bool base, const std::vector<std::string>& adapters,
                                   const std::vector<std::string>& moes) {
  std::vector<EvalModel> rows;
  if (base) rows.push_back({"base", "", EvalModelKind::base});
  for (const auto& a : adapters) {
    if (fs::exists(fs::path(a) / "adapter_config.json")) {
      fs::path p = fs::path(a).lexically_normal();
      if (p.filename().empty()) p = p.parent_path();
      rows.push_back({p.filename().string(), a, EvalModelKind::adapter});
    } else {
      for (const auto& e : bank_list(a)) rows.push_back({e.name, e.path, EvalModelKind::adapter});
    }
  }
  for (const auto& m : moes) {
    // NAME=FILE when the part before the first '=' is a plain name (a path may hold '=')
    const auto eq = m.find('=');
    if (eq != std::string::npos && eq > 0 && m.substr(0, eq).find('/') == std::string::npos) {
      rows.push_back({m.substr(0, eq), m.substr(eq + 1), EvalModelKind::moe});
    } else {
      rows.push_back({fs::path(m).stem().string(), m, EvalModelKind::moe});
    }
    if (rows.back().path.empty()) throw UsageError("kmoe eval: --moe " + m + ": no file after '='");
  }
  if (rows.empty()) throw UsageError("kmoe eval: no model to evaluate: give --base, --adapters or --moe");
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (rows[i].name == rows[j].name) {
        throw UsageError("kmoe eval: two models are named '" + rows[i].name + "' (" +
                         (rows[j].path.empty() ? "the base" : rows[j].path) + ", " + rows[i].path +
                         "); name MoE files with --moe NAME=FILE");
      }
    }
  }
  return rows;
}

namespace {

struct EvalConfig {
  std::string model_path, test_path, output, task, device = "auto", soft_prompt;
  ComputeDtype dtype;
  ScoringOptions scoring;
  int64_t chunk_size = 16;
};

// Each rank's base model and the hook of the model it evaluated last.
struct EvalRankModel {
  std::optional<ModelFiles> files;
  std::optional<LlamaModel> model;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  int64_t row = -1;
  std::unique_ptr<LinearHook> hook;
};

std::unique_ptr<LinearHook> hook_load(const EvalModel& m, const EvalRankModel& rm) {
  try {
    if (m.kind == EvalModelKind::adapter) {
      LoraAdapter adapter = peft_adapter_load(m.path, rm.files->config, m.name);
      lora_adapter_validate(adapter, rm.files->config);
      lora_adapter_to(adapter, rm.device, rm.dtype);
      auto set = std::make_unique<LoraSet>(rm.files->config);
      set->add(std::move(adapter));
      set->activate(m.name);
      return set;
    }
    auto moe = std::make_unique<MoeLora>(moe_read(m.path, rm.files->config));
    moe->to(rm.device, rm.dtype);
    moe->set_training(false);
    return moe;
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(m.kind == EvalModelKind::moe ? "MoE '" : "adapter '") + m.name + "' (" +
                             m.path + "): " + e.what());
  }
}

float mean_or_nan(double sum, int64_t n) {
  return n > 0 ? static_cast<float>(sum / static_cast<double>(n)) : std::numeric_limits<float>::quiet_NaN();
}

nlohmann::json number_or_null(float v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

// Reads every unit back from the journal (every rank: a shared folder), computes the metrics
// and writes eval.h5.
void eval_write(const MpiWorld& world, const EvalConfig& cfg, const Provenance& prov, const UnitJournal& journal,
                const std::vector<EvalModel>& rows, const std::vector<KshotExample>& examples,
                const std::vector<std::string>& gold, const InsightPlan* plan) {
  const int64_t n_samples = examples.size();
  const int64_t n_models = rows.size();
  const int64_t n_chunks = (n_samples + cfg.chunk_size - 1) / cfg.chunk_size;
  const int64_t n_units = n_models * n_chunks;
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r.name);
  // Every rank reads the journal (a shared folder) and holds the same tables.
  std::vector<int64_t> correct(n_models * n_samples, 0), ll_c(correct.size(), -1), ll_nc(correct.size(), -1);
  std::vector<std::string> prediction(correct.size()), reply(correct.size());
  for (int64_t u = 0; u < n_units; ++u) {
    const auto t = journal.read(u);
    const int64_t m = u / n_chunks, begin = (u % n_chunks) * cfg.chunk_size;
    const auto iv = t.at("ints").contiguous();
    const auto off = t.at("offsets").contiguous();
    auto ia = iv.accessor<int64_t, 2>();
    auto oa = off.accessor<int64_t, 2>();
    const std::string preds = unit_journal_text(t.at("predictions"));
    const std::string replies = unit_journal_text(t.at("replies"));
    for (int64_t k = 0; k < iv.size(1); ++k) {
      const int64_t i = m * n_samples + begin + k;
      correct[i] = ia[0][k];
      ll_c[i] = ia[1][k];
      ll_nc[i] = ia[2][k];
      prediction[i] = preds.substr(oa[0][k], oa[0][k + 1] - oa[0][k]);
      reply[i] = replies.substr(oa[1][k], oa[1][k + 1] - oa[1][k]);
    }
  }
  const bool classification = answer_format_is_classification(cfg.scoring.answer.format);
  std::vector<float> accuracy(n_models), f1(n_models), acc_ll(n_models), acc_ll_norm(n_models);
  for (int64_t m = 0; m < n_models; ++m) {
    double c = 0, l = 0, ln = 0;
    int64_t mc = 0;
    for (int64_t k = 0; k < n_samples; ++k) {
      const int64_t i = m * n_samples + k;
      c += correct[i];
      if (ll_c[i] >= 0) {
        ++mc;
        l += ll_c[i];
        ln += ll_nc[i];
      }
    }
    accuracy[m] = mean_or_nan(c, n_samples);
    acc_ll[m] = mean_or_nan(l, mc);
    acc_ll_norm[m] = mean_or_nan(ln, mc);
    const std::vector<std::string> pred(prediction.begin() + m * n_samples, prediction.begin() + (m + 1) * n_samples);
    f1[m] = classification ? static_cast<float>(macro_f1(gold, pred)) : std::numeric_limits<float>::quiet_NaN();
  }
  std::vector<std::string> paths, ids;
  for (const auto& r : rows) paths.push_back(r.path.empty() ? cfg.model_path : r.path);
  for (const auto& e : examples) ids.push_back(e.id);
  ArtifactWriter w(world.comm, cfg.output, prov);
  const std::vector<int64_t> ms{n_models, n_samples};
  w.set_attr("/", "task", cfg.task);
  w.set_attr("/", "answer_format", std::string(answer_format_name(cfg.scoring.answer.format)));
  w.write_strings("models", names);
  w.write_strings("model_paths", paths);
  w.write_strings("samples", ids);
  w.write_strings("gold", gold);
  w.write_floats("accuracy", {n_models}, accuracy.data());
  w.write_floats("macro_f1", {n_models}, f1.data());
  w.set_attr("macro_f1", "note", std::string("NaN unless --answer-format is choice or yesno"));
  w.write_floats("acc_ll", {n_models}, acc_ll.data());
  w.write_floats("acc_ll_norm", {n_models}, acc_ll_norm.data());
  w.set_attr("acc_ll", "note", std::string("NaN when no example has choices"));
  w.write_int64("correct", ms, correct.data());
  w.write_strings("prediction", prediction);
  w.set_attr("prediction", "layout", std::string("models x samples, row-major, flattened"));
  w.write_strings("reply", reply);
  w.set_attr("reply", "layout", std::string("models x samples, row-major, flattened: the greedy reply, decoded"));
  if (plan) insight_plan_write(w, *plan);
  w.commit();
}

}  // namespace

// About 115 lines: the options and gold answers checked before any work, the provenance, then
// the work units (work_units_run) and eval_write.
StageOutcome eval_stage(const MpiWorld& world, const EvalOptions& options) {
  if (options.model.empty() || options.test.empty()) throw UsageError("kmoe eval: --model and --test are required");
  EvalConfig cfg;
  cfg.model_path = options.model;
  cfg.test_path = options.test;
  cfg.output = options.output;
  cfg.task = !options.task.empty() ? options.task : fs::path(cfg.test_path).stem().string();
  ScoringCommandOptions common = scoring_options_resolve(options.scoring, "eval");
  cfg.scoring = std::move(common.scoring);
  cfg.chunk_size = common.chunk_size;
  cfg.device = common.device;
  cfg.dtype = common.dtype;
  cfg.soft_prompt = common.soft_prompt;
  const auto rows = eval_models(options.base, options.adapters, options.moe);

  const auto examples = kshot_load(cfg.test_path);
  if (examples.empty()) throw std::invalid_argument(cfg.test_path + ": no examples");
  // Gold answers normalised as scoring_prepare does, checked here on every rank so that a bad
  // answer stops the run before any work, naming its line.
  std::vector<std::string> gold;
  for (const auto& ex : examples) {
    AnswerSpec a = cfg.scoring.answer;
    a.n_choices = static_cast<int64_t>(ex.choices.size());
    try {
      if (a.format == AnswerFormat::choice && ex.choices.empty()) {
        throw std::invalid_argument("answer format choice needs choices");
      }
      gold.push_back(answer_normalize_gold(a, ex.answer));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(cfg.test_path + ":" + std::to_string(ex.line) + ": " + e.what());
    }
  }

  StageSpec spec;
  spec.stage = "eval";
  spec.output = cfg.output;
  spec.force = options.force;
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r.name);
  spec.options = {{"task", cfg.task},
                  {"models", names},
                  {"prompt_format", options.scoring.prompt_format},
                  {"answer_format", options.scoring.answer_format},
                  {"answer_regex", cfg.scoring.answer.regex},
                  {"max_new_tokens", cfg.scoring.max_new_tokens},
                  {"batch_size", cfg.scoring.batch_size},
                  {"chunk_size", cfg.chunk_size},
                  {"device", cfg.device}};
  // Recorded when not float32, so float32 artifacts made before --dtype existed stay complete.
  if (cfg.dtype.name != "float32") spec.options["dtype"] = cfg.dtype.name;
  spec.inputs = {{"model", cfg.model_path}, {"test", cfg.test_path}};
  if (!cfg.soft_prompt.empty()) spec.inputs.emplace_back("soft_prompt", cfg.soft_prompt);
  const InsightFlags& insight = options.insights;
  if (!insight.pool.empty()) insight_spec_add(spec, insight, "eval");
  for (const auto& r : rows) {
    if (r.kind != EvalModelKind::base)
      spec.inputs.emplace_back((r.kind == EvalModelKind::moe ? "moe/" : "adapter/") + r.name, r.path);
  }

  const int64_t n_samples = examples.size();
  const int64_t n_models = rows.size();
  const int64_t n_chunks = (n_samples + cfg.chunk_size - 1) / cfg.chunk_size;
  const int64_t n_units = n_models * n_chunks;

  const auto outcome = stage_run(world, spec, [&](const Provenance& prov) {
    // The unit layout is part of the fingerprint: a journal left by a kmoe whose units had no
    // replies is started over rather than read wrongly.
    UnitJournal journal(world.comm, cfg.output, provenance_fingerprint(prov) + ":units-v2", spec.force);
    const int64_t already = static_cast<int64_t>(journal.done_units().size());
    log_info("eval: ", n_models, " models x ", n_samples, " examples = ", n_units, " units; skipping ", already,
             " units already done, ", n_units - already, " to do");
    // PANDA: the questions with the pool rows nearest to each put before them.
    std::optional<InsightPlan> plan;
    if (!insight.pool.empty()) plan = insight_plan(world, insight, examples, "eval");
    const std::vector<KshotExample>& prompts = plan ? plan->examples : examples;
    EvalRankModel rm;
    std::vector<ScoringItem> items;
    auto ensure_model = [&]() {
      if (rm.model) return;
      rm.files = model_files_load(cfg.model_path);
      rm.device = cfg.device == "cuda" ? torch::Device(torch::kCUDA, world.local_rank) : torch::Device(torch::kCPU);
      rm.dtype = cfg.dtype.type;
      rm.model = llama_from_weights(rm.files->config, std::move(rm.files->weights), rm.device, rm.dtype);
      if (!cfg.soft_prompt.empty()) peft_prompt_apply(cfg.soft_prompt, *rm.model);
      if (cfg.scoring.prompt.style == PromptStyle::chat) cfg.scoring.prompt.chat = model_chat_template(*rm.files);
      cfg.scoring.stop_ids = rm.files->stop_token_ids;
      items = scoring_prepare(prompts, *rm.files->tokenizer, cfg.scoring, cfg.test_path);
    };
    work_units_run(world, journal, {"eval", n_units}, [&](int64_t unit) -> UnitTensors {
      const int64_t m = unit / n_chunks, c = unit % n_chunks;
      const int64_t begin = c * cfg.chunk_size, end = std::min(n_samples, begin + cfg.chunk_size);
      ensure_model();
      if (rm.row != m) {
        rm.hook.reset();
        rm.row = -1;
        if (rows[m].kind != EvalModelKind::base) rm.hook = hook_load(rows[m], rm);
        rm.row = m;
      }
      const std::vector<ScoringItem> chunk(items.begin() + begin, items.begin() + end);
      const auto scores = scoring_run(*rm.model, *rm.files->tokenizer, chunk, cfg.scoring, rm.hook.get());
      const int64_t n = end - begin;
      at::Tensor ints = torch::zeros({3, n}, torch::kInt64);      // correct, ll_correct, ll_norm_correct
      at::Tensor offsets = torch::zeros({2, n + 1}, torch::kInt64);  // into the concatenated predictions, replies
      auto ia = ints.accessor<int64_t, 2>();
      auto oa = offsets.accessor<int64_t, 2>();
      std::string preds, replies;
      for (int64_t k = 0; k < n; ++k) {
        ia[0][k] = scores[k].correct;
        ia[1][k] = scores[k].ll_correct;
        ia[2][k] = scores[k].ll_norm_correct;
        preds += scores[k].prediction;
        replies += scores[k].reply;
        oa[0][k + 1] = static_cast<int64_t>(preds.size());
        oa[1][k + 1] = static_cast<int64_t>(replies.size());
      }
      return {{"ints", ints},
              {"offsets", offsets},
              {"predictions", unit_journal_bytes(preds)},
              {"replies", unit_journal_bytes(replies)}};
    });

    eval_write(world, cfg, prov, journal, rows, examples, gold, plan ? &*plan : nullptr);
    journal.remove();
  });
  log_info("eval: ", outcome.skipped ? "skipped: " : "", outcome.reason, " -> ", cfg.output);
  if (world.is_root()) {
    const auto summary = eval_summary(cfg.output);
    if (options.json) {
      std::cout << summary.dump(2) << std::endl;
    } else {
      std::cout << eval_table(summary) << std::flush;
    }
  }
  return outcome;
}

nlohmann::json eval_summary(const std::string& eval_h5) {
  ArtifactReader r(eval_h5);
  const auto names = r.read_strings("models");
  const auto paths = r.read_strings("model_paths");
  const auto acc = r.read_floats("accuracy");
  const auto f1 = r.read_floats("macro_f1");
  const auto ll = r.read_floats("acc_ll");
  const auto lln = r.read_floats("acc_ll_norm");
  nlohmann::json out = {{"task", r.attr_string("/", "task")},
                        {"samples", r.shape("samples").at(0)},
                        {"answer_format", r.attr_string("/", "answer_format")},
                        {"models", nlohmann::json::array()}};
  for (size_t m = 0; m < names.size(); ++m) {
    out["models"].push_back({{"name", names[m]},
                             {"path", paths[m]},
                             {"accuracy", number_or_null(acc[m])},
                             {"macro_f1", number_or_null(f1[m])},
                             {"acc_ll", number_or_null(ll[m])},
                             {"acc_ll_norm", number_or_null(lln[m])}});
  }
  return out;
}

std::string eval_table(const nlohmann::json& summary) {
  bool any_ll = false;
  size_t width = 5;
  for (const auto& m : summary["models"]) {
    any_ll = any_ll || !m["acc_ll"].is_null();
    width = std::max(width, m["name"].get<std::string>().size());
  }
  auto cell = [](const nlohmann::json& v) {
    std::ostringstream s;
    if (v.is_null()) {
      s << std::setw(10) << "-";
    } else {
      s << std::setw(10) << std::fixed << std::setprecision(4) << v.get<double>();
    }
    return s.str();
  };
  std::ostringstream s;
  s << "task " << summary["task"].get<std::string>() << ": " << summary["samples"].get<int64_t>() << " examples, "
    << summary["answer_format"].get<std::string>() << " answers\n";
  s << std::left << std::setw(static_cast<int>(width)) << "model" << std::right << std::setw(10) << "accuracy"
    << std::setw(10) << "macro-F1";
  if (any_ll) s << std::setw(10) << "acc_ll" << std::setw(10) << "ll_norm";
  s << "\n";
  for (const auto& m : summary["models"]) {
    s << std::left << std::setw(static_cast<int>(width)) << m["name"].get<std::string>() << std::right
      << cell(m["accuracy"]) << cell(m["macro_f1"]);
    if (any_ll) s << cell(m["acc_ll"]) << cell(m["acc_ll_norm"]);
    s << "\n";
  }
  return s.str();
}

}  // namespace kmoe
