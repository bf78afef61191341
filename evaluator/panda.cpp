// See panda.h. The learning stage keeps, per rank, the expert (base + hook), the LLM (the
// expert's base itself when both name the same model) and the encoder, each loaded on first
// use so that a resumed run whose units are all done loads nothing.
#include "evaluator/panda.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "data/formats/model_files.h"
#include "data/formats/moe_file.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/peft_prompt.h"
#include "data/store/artifact.h"
#include "data/text/prompt_format.h"
#include "model/lora.h"
#include "model/moe_lora.h"
#include "runtime/log.h"
#include "runtime/unit_journal.h"
#include "runtime/work_units.h"

namespace kmoe {

namespace fs = std::filesystem;

const char* const kPandaInsightPrompt =
    "Task: {question}\n\n"
    "An expert on this task prefers the answer \"{preferred}\" to the answer \"{rejected}\". "
    "Explain in two or three sentences why the expert holds this preference, as an insight "
    "that helps to answer similar questions.";

std::string panda_key(const KshotExample& example) {
  std::string key = prompt_question(example);
  if (!example.input.empty()) key.append("\n\n").append(example.input);
  return key;
}

namespace {

// `text` with every {name} of `values` replaced, in one pass (a value holding "{x}" is not
// expanded again); other braces are left as they are.
std::string panda_fill(const std::string& text, const std::map<std::string, std::string>& values) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '{') {
      const size_t close = text.find('}', i);
      if (close != std::string::npos) {
        const auto it = values.find(text.substr(i + 1, close - i - 1));
        if (it != values.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

std::string panda_trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string file_text(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open " + what);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct PandaConfig {
  PandaLearnOptions o;
  ScoringOptions scoring;
  std::string device;
  ComputeDtype dtype;
  int64_t chunk_size = 16;
  int64_t rejected_rank = 1;  // 1: top2, 2: top3
  std::string insight_prompt;
};

struct PandaPair {
  bool has_pair = false;
  std::string preferred, rejected, insight;
  double preferred_score = std::numeric_limits<double>::quiet_NaN();
  double rejected_score = std::numeric_limits<double>::quiet_NaN();
};

class PandaWorker {
 public:
  PandaWorker(const MpiWorld& world, const PandaConfig& cfg, const std::vector<KshotExample>& examples)
      : world_(world), cfg_(cfg), examples_(examples) {}

  UnitTensors unit(int64_t unit) {
    const int64_t n_samples = static_cast<int64_t>(examples_.size());
    const int64_t begin = unit * cfg_.chunk_size, end = std::min(n_samples, begin + cfg_.chunk_size);
    const int64_t n = end - begin;
    ensure_expert();
    std::vector<PandaPair> pairs(n);
    prefer_choices(begin, end, pairs);
    for (int64_t i = begin; i < end; ++i) {
      if (examples_[i].choices.empty()) prefer_free_form(i, pairs[i - begin]);
    }
    explain(begin, pairs);
    ensure_encoder();
    std::vector<std::string> keys;
    for (int64_t i = begin; i < end; ++i) keys.push_back(panda_key(examples_[i]));
    const at::Tensor emb = encoder_->encode(keys).to(torch::kFloat32).contiguous();

    at::Tensor scores = torch::full({2, n}, std::numeric_limits<double>::quiet_NaN(), torch::kFloat64);
    at::Tensor has = torch::zeros({n}, torch::kInt64);
    at::Tensor offsets = torch::zeros({3 * n + 1}, torch::kInt64);
    auto sa = scores.accessor<double, 2>();
    auto ha = has.accessor<int64_t, 1>();
    auto oa = offsets.accessor<int64_t, 1>();
    std::string text;
    for (int64_t k = 0; k < n; ++k) {
      sa[0][k] = pairs[k].preferred_score;
      sa[1][k] = pairs[k].rejected_score;
      ha[k] = pairs[k].has_pair;
      int64_t j = 3 * k;
      for (const std::string* s : {&pairs[k].preferred, &pairs[k].rejected, &pairs[k].insight}) {
        text += *s;
        oa[++j] = static_cast<int64_t>(text.size());
      }
    }
    return {{"scores", scores},
            {"has_pair", has},
            {"offsets", offsets},
            {"text", unit_journal_bytes(text)},
            {"embeddings", emb}};
  }

 private:
  void ensure_expert() {
    if (expert_) return;
    expert_files_ = model_files_load(cfg_.o.expert_model);
    device_ = cfg_.device == "cuda" ? torch::Device(torch::kCUDA, world_.local_rank) : torch::Device(torch::kCPU);
    dtype_ = cfg_.dtype.type;
    expert_ = llama_from_weights(expert_files_->config, std::move(expert_files_->weights), device_, dtype_);
    if (!cfg_.o.scoring.soft_prompt.empty()) peft_prompt_apply(cfg_.o.scoring.soft_prompt, *expert_);
    const auto& config = expert_files_->config;
    try {
      if (!cfg_.o.expert_adapter.empty()) {
        LoraAdapter adapter = peft_adapter_load(cfg_.o.expert_adapter, config, "expert");
        lora_adapter_validate(adapter, config);
        lora_adapter_to(adapter, device_, dtype_);
        auto set = std::make_unique<LoraSet>(config);
        set->add(std::move(adapter));
        set->activate("expert");
        hook_ = std::move(set);
      } else if (!cfg_.o.expert_moe.empty()) {
        auto moe = std::make_unique<MoeLora>(moe_read(cfg_.o.expert_moe, config));
        moe->to(device_, dtype_);
        moe->set_training(false);
        hook_ = std::move(moe);
      }
    } catch (const std::exception& e) {
      const std::string& path = cfg_.o.expert_adapter.empty() ? cfg_.o.expert_moe : cfg_.o.expert_adapter;
      throw std::runtime_error("the expert (" + path + "): " + e.what());
    }
    scoring_ = cfg_.scoring;
    if (scoring_.prompt.style == PromptStyle::chat) scoring_.prompt.chat = model_chat_template(*expert_files_);
    scoring_.stop_ids = expert_files_->stop_token_ids;
    items_ = scoring_prepare(examples_, *expert_files_->tokenizer, scoring_, cfg_.o.data);
  }

  void ensure_llm() {
    if (llm_) return;
    if (cfg_.o.llm == cfg_.o.expert_model && cfg_.o.scoring.soft_prompt.empty()) {
      llm_ = &*expert_;  // the same weights; the expert's hook is not passed to it
      llm_files_ = &*expert_files_;
    } else {
      own_llm_files_ = model_files_load(cfg_.o.llm);
      own_llm_ = llama_from_weights(own_llm_files_->config, std::move(own_llm_files_->weights), device_, dtype_);
      llm_ = &*own_llm_;
      llm_files_ = &*own_llm_files_;
    }
    if (!llm_files_->chat_template) {
      log_warn("panda learn: the LLM's questions are used as they are: ",
               llm_files_->chat_template_error.empty() ? "it has no chat template" : llm_files_->chat_template_error);
    }
  }

  void ensure_encoder() {
    if (!encoder_) encoder_ = encoder_load(cfg_.o.encoder);
  }

  // Examples with choices: the expert's option log-likelihoods, one scoring_run for the chunk.
  void prefer_choices(int64_t begin, int64_t end, std::vector<PandaPair>& pairs) {
    std::vector<ScoringItem> items;
    std::vector<int64_t> where;
    for (int64_t i = begin; i < end; ++i) {
      if (examples_[i].choices.empty()) continue;
      items.push_back(items_[i]);
      where.push_back(i);
    }
    if (items.empty()) return;
    ScoringOptions o = scoring_;
    o.max_new_tokens = 0;
    const auto scores = scoring_run(*expert_, *expert_files_->tokenizer, items, o, hook_.get());
    for (size_t j = 0; j < items.size(); ++j) {
      const auto& ll = scores[j].option_ll;
      const auto& ex = examples_[where[j]];
      if (ll.size() < 2) continue;
      std::vector<size_t> order(ll.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ll[a] > ll[b]; });
      const size_t r = order[std::min<size_t>(cfg_.rejected_rank, ll.size() - 1)];
      auto& p = pairs[where[j] - begin];
      p.has_pair = true;
      p.preferred = kshot_choice_letter(order[0]) + ". " + ex.choices[order[0]];
      p.rejected = kshot_choice_letter(r) + ". " + ex.choices[r];
      p.preferred_score = ll[order[0]];
      p.rejected_score = ll[r];
    }
  }

  // A free-form example: candidates sampled from the expert, ranked by its log-likelihood.
  void prefer_free_form(int64_t i, PandaPair& p) {
    const auto& prompt = items_[i].prompt_ids;
    GenerateOptions g;
    g.max_new_tokens = std::max<int64_t>(1, scoring_.max_new_tokens);
    g.temperature = cfg_.o.temperature;
    g.seed = cfg_.o.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(i);
    g.stop_token_ids = scoring_.stop_ids;
    const auto replies = llama_generate(*expert_, std::vector<std::vector<int64_t>>(cfg_.o.candidates, prompt), g,
                                        hook_.get());
    std::vector<std::string> texts;
    std::vector<std::vector<int64_t>> ids;
    for (const auto& r : replies) {
      const std::vector<int32_t> r32(r.begin(), r.end());
      const std::string t = panda_trim(utf8_sanitize(expert_files_->tokenizer->decode(r32, true)));
      if (r.empty() || t.empty() || std::find(texts.begin(), texts.end(), t) != texts.end()) continue;
      texts.push_back(t);
      ids.push_back(r);
    }
    if (texts.size() < 2) return;
    PromptPrefill prefill = llama_prefill(*expert_, {prompt}, hook_.get());
    std::vector<std::pair<int64_t, std::vector<int64_t>>> conts;
    for (const auto& c : ids) conts.emplace_back(0, c);
    const auto logp = llama_prefix_logprobs(*expert_, prefill, conts, hook_.get());
    std::vector<double> ll;
    for (const auto& l : logp) ll.push_back(l.to(torch::kFloat64).sum().item<double>());
    std::vector<size_t> order(ll.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ll[a] > ll[b]; });
    const size_t r = order[std::min<size_t>(cfg_.rejected_rank, ll.size() - 1)];
    p.has_pair = true;
    p.preferred = texts[order[0]];
    p.rejected = texts[r];
    p.preferred_score = ll[order[0]];
    p.rejected_score = ll[r];
  }

  // The LLM's insight for every pair of the chunk: greedy, batched by prompt length.
  void explain(int64_t begin, std::vector<PandaPair>& pairs) {
    std::vector<size_t> with;
    for (size_t k = 0; k < pairs.size(); ++k) {
      if (pairs[k].has_pair) with.push_back(k);
    }
    if (with.empty()) return;
    ensure_llm();
    const auto& tok = *llm_files_->tokenizer;
    std::vector<std::vector<int64_t>> prompts;
    std::vector<int64_t> lengths;
    for (const size_t k : with) {
      const auto& ex = examples_[begin + k];
      const std::string q = panda_fill(cfg_.insight_prompt, {{"question", panda_key(ex)},
                                                             {"preferred", pairs[k].preferred},
                                                             {"rejected", pairs[k].rejected}});
      const bool chat = llm_files_->chat_template.has_value();
      const std::string text = chat ? chat_render(*llm_files_->chat_template, {{"user", q}}, true) : q;
      const auto ids = tok.encode(text, !chat);
      if (static_cast<int64_t>(ids.size()) + cfg_.o.max_insight_tokens > llm_files_->config.max_position_embeddings)
        throw std::runtime_error(cfg_.o.data + ":" + std::to_string(ex.line) + ": the question to the LLM has " +
                                 std::to_string(ids.size()) + " tokens; with --max-insight-tokens " +
                                 std::to_string(cfg_.o.max_insight_tokens) + " it passes the LLM's " +
                                 std::to_string(llm_files_->config.max_position_embeddings) + " positions");
      prompts.emplace_back(ids.begin(), ids.end());
      lengths.push_back(static_cast<int64_t>(ids.size()));
    }
    GenerateOptions g;
    g.max_new_tokens = cfg_.o.max_insight_tokens;
    g.stop_token_ids = llm_files_->stop_token_ids;
    for (const auto& group : length_batches(lengths, scoring_.batch_size)) {
      std::vector<std::vector<int64_t>> batch;
      for (const size_t j : group) batch.push_back(prompts[j]);
      const auto replies = llama_generate(*llm_, batch, g, nullptr);
      for (size_t b = 0; b < group.size(); ++b) {
        const std::vector<int32_t> r32(replies[b].begin(), replies[b].end());
        pairs[with[group[b]]].insight = panda_trim(utf8_sanitize(tok.decode(r32, true)));
      }
    }
  }

  const MpiWorld& world_;
  const PandaConfig& cfg_;
  const std::vector<KshotExample>& examples_;
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat32;
  std::optional<ModelFiles> expert_files_, own_llm_files_;
  std::optional<LlamaModel> expert_, own_llm_;
  std::unique_ptr<LinearHook> hook_;
  const LlamaModel* llm_ = nullptr;
  const ModelFiles* llm_files_ = nullptr;
  std::unique_ptr<SentenceEncoder> encoder_;
  ScoringOptions scoring_;
  std::vector<ScoringItem> items_;
};

// Reads every unit back from the journal (every rank) and writes insights.h5.
void panda_write(const MpiWorld& world, const PandaConfig& cfg, const Provenance& prov, const UnitJournal& journal,
                 const std::vector<KshotExample>& examples, int64_t n_units) {
  const int64_t n = static_cast<int64_t>(examples.size());
  std::vector<std::string> preferred(n), rejected(n), insights(n);
  std::vector<float> pscore(n), rscore(n), emb;
  std::vector<int64_t> has(n);
  EncoderDescription desc;
  int64_t dim = 0;
  for (int64_t u = 0; u < n_units; ++u) {
    const auto t = journal.read(u);
    const int64_t begin = u * cfg.chunk_size;
    const auto s = t.at("scores").contiguous();
    const auto h = t.at("has_pair").contiguous();
    const auto off = t.at("offsets").contiguous();
    const auto e = t.at("embeddings").to(torch::kFloat32).contiguous();
    const std::string text = unit_journal_text(t.at("text"));
    auto sa = s.accessor<double, 2>();
    auto ha = h.accessor<int64_t, 1>();
    auto oa = off.accessor<int64_t, 1>();
    if (dim == 0) {
      dim = e.size(1);
      emb.assign(n * dim, 0.f);
    }
    if (e.size(1) != dim) throw std::runtime_error(journal.dir() + ": unit " + std::to_string(u) + " has another dimension");
    for (int64_t k = 0; k < s.size(1); ++k) {
      const int64_t i = begin + k;
      pscore[i] = static_cast<float>(sa[0][k]);
      rscore[i] = static_cast<float>(sa[1][k]);
      has[i] = ha[k];
      preferred[i] = text.substr(oa[3 * k], oa[3 * k + 1] - oa[3 * k]);
      rejected[i] = text.substr(oa[3 * k + 1], oa[3 * k + 2] - oa[3 * k + 1]);
      insights[i] = text.substr(oa[3 * k + 2], oa[3 * k + 3] - oa[3 * k + 2]);
      std::copy(e[k].data_ptr<float>(), e[k].data_ptr<float>() + dim, emb.begin() + i * dim);
    }
  }
  // The encoder's description, without loading its model: what its loader reports (rank 0).
  std::string desc_json;
  if (world.is_root()) {
    const auto enc = encoder_load(cfg.o.encoder);
    const auto& d = enc->describe();
    desc_json = nlohmann::json{{"kind", d.kind},       {"model", d.model},         {"sha", d.model_sha256},
                               {"pooling", d.pooling}, {"normalize", d.normalize}, {"prefix", d.prefix},
                               {"dim", d.dim},         {"max_tokens", d.max_tokens}}
                    .dump();
  }
  const auto dj = nlohmann::json::parse(mpi_bcast_string(world, desc_json));
  std::vector<std::string> ids, keys, answers;
  for (const auto& ex : examples) {
    ids.push_back(ex.id);
    keys.push_back(panda_key(ex));
    answers.push_back(ex.answer);
  }
  ArtifactWriter w(world.comm, cfg.o.output, prov);
  w.set_attr("/", "task", cfg.o.task.empty() ? fs::path(cfg.o.data).stem().string() : cfg.o.task);
  w.set_attr("/", "pairs", cfg.o.pairs);
  w.set_attr("/", "expert_model", cfg.o.expert_model);
  w.set_attr("/", "expert_adapter", cfg.o.expert_adapter);
  w.set_attr("/", "expert_moe", cfg.o.expert_moe);
  w.set_attr("/", "llm", cfg.o.llm);
  w.set_attr("/", "insight_prompt", cfg.insight_prompt);
  w.set_attr("/", "encoder_kind", dj["kind"].get<std::string>());
  w.set_attr("/", "encoder_model", dj["model"].get<std::string>());
  w.set_attr("/", "encoder_model_sha256", dj["sha"].get<std::string>());
  w.set_attr("/", "pooling", dj["pooling"].get<std::string>());
  w.set_attr("/", "normalize", static_cast<int64_t>(dj["normalize"].get<bool>()));
  w.set_attr("/", "prefix", dj["prefix"].get<std::string>());
  w.set_attr("/", "dim", dj["dim"].get<int64_t>());
  w.set_attr("/", "max_tokens", dj["max_tokens"].get<int64_t>());
  w.write_strings("ids", ids);
  w.write_strings("keys", keys);
  w.write_strings("answers", answers);
  w.write_strings("preferred", preferred);
  w.write_strings("rejected", rejected);
  w.write_strings("insights", insights);
  w.write_floats("preferred_score", {n}, pscore.data());
  w.write_floats("rejected_score", {n}, rscore.data());
  w.write_int64("has_pair", {n}, has.data());
  w.write_floats("key_embeddings", {n, dim}, emb.data());
  w.commit();
}

}  // namespace

StageOutcome panda_learn_stage(const MpiWorld& world, const PandaLearnOptions& options) {
  const std::string p = "kmoe panda learn: ";
  if (options.expert_model.empty() || options.llm.empty() || options.data.empty() || options.encoder.model.empty())
    throw UsageError(p + "--expert-model, --llm, --data and --encoder-model are required");
  if (!options.expert_adapter.empty() && !options.expert_moe.empty())
    throw UsageError(p + "give --expert-adapter or --expert-moe, not both");
  if (options.pairs != "top2" && options.pairs != "top3")
    throw UsageError(p + "--pairs must be top2 or top3, not '" + options.pairs + "'");
  if (options.candidates < 2) throw UsageError(p + "--candidates must be >= 2 (a pair needs two answers)");
  if (!(options.temperature > 0)) throw UsageError(p + "--temperature must be > 0: the candidates are sampled");
  if (options.max_insight_tokens < 1) throw UsageError(p + "--max-insight-tokens must be >= 1");
  if (options.encoder.kind != "bert" && options.encoder.kind != "decoder")
    throw UsageError(p + "--encoder must be bert or decoder, not '" + options.encoder.kind + "'");
  PandaConfig cfg;
  cfg.o = options;
  ScoringCommandOptions common = scoring_options_resolve(options.scoring, "panda learn");
  cfg.scoring = std::move(common.scoring);
  cfg.chunk_size = common.chunk_size;
  cfg.device = common.device;
  cfg.dtype = common.dtype;
  cfg.rejected_rank = options.pairs == "top3" ? 2 : 1;
  cfg.insight_prompt = options.insight_prompt.empty() ? kPandaInsightPrompt
                                                      : file_text(options.insight_prompt, "the insight prompt");
  if (cfg.insight_prompt.find("{preferred}") == std::string::npos ||
      cfg.insight_prompt.find("{rejected}") == std::string::npos)
    throw UsageError(p + "--insight-prompt " + options.insight_prompt + ": it must hold {preferred} and {rejected}");
  cfg.o.encoder.threads = options.scoring.threads;

  const auto examples = kshot_load(options.data);
  if (examples.empty()) throw std::invalid_argument(options.data + ": no examples");

  StageSpec spec;
  spec.stage = "panda learn";
  spec.output = options.output;
  spec.force = options.force;
  spec.options = {{"pairs", options.pairs},
                  {"candidates", options.candidates},
                  {"temperature", options.temperature},
                  {"seed", options.seed},
                  {"max_insight_tokens", options.max_insight_tokens},
                  {"insight_prompt", cfg.insight_prompt},
                  {"task", options.task},
                  {"prompt_format", options.scoring.prompt_format},
                  {"answer_format", options.scoring.answer_format},
                  {"answer_regex", cfg.scoring.answer.regex},
                  {"max_new_tokens", cfg.scoring.max_new_tokens},
                  {"batch_size", cfg.scoring.batch_size},
                  {"chunk_size", cfg.chunk_size},
                  {"device", cfg.device},
                  {"encoder", options.encoder.kind},
                  {"encoder_pooling", options.encoder.pooling},
                  {"encoder_prefix", options.encoder.prefix},
                  {"encoder_max_tokens", options.encoder.max_tokens},
                  {"encoder_batch_size", options.encoder.batch_size}};
  // Recorded when not float32, so float32 artifacts made before --dtype existed stay complete.
  if (cfg.dtype.name != "float32") spec.options["dtype"] = cfg.dtype.name;
  spec.inputs = {{"expert_model", options.expert_model}, {"llm", options.llm}, {"data", options.data},
                 {"encoder_model", options.encoder.model}};
  if (!options.expert_adapter.empty()) spec.inputs.emplace_back("expert_adapter", options.expert_adapter);
  if (!options.expert_moe.empty()) spec.inputs.emplace_back("expert_moe", options.expert_moe);
  if (!options.scoring.soft_prompt.empty()) spec.inputs.emplace_back("soft_prompt", options.scoring.soft_prompt);

  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t n_units = (n + cfg.chunk_size - 1) / cfg.chunk_size;
  const auto outcome = stage_run(world, spec, [&](const Provenance& prov) {
    UnitJournal journal(world.comm, options.output, provenance_fingerprint(prov), spec.force);
    const int64_t already = static_cast<int64_t>(journal.done_units().size());
    log_info("panda learn: ", n, " examples in ", n_units, " units; skipping ", already, " units already done");
    PandaWorker worker(world, cfg, examples);
    work_units_run(world, journal, {"insights", n_units}, [&](int64_t unit) { return worker.unit(unit); });
    panda_write(world, cfg, prov, journal, examples, n_units);
    journal.remove();
  });
  log_info("panda learn: ", outcome.skipped ? "skipped: " : "", outcome.reason, " -> ", options.output);
  return outcome;
}

InsightPool insight_pool_read(const std::string& path) {
  if (!fs::is_regular_file(path)) throw std::runtime_error(path + ": no such insight pool (kmoe panda learn writes one)");
  const std::string stage = artifact_stage(path);
  if (stage != "panda learn")
    throw std::runtime_error(path + ": not an insight pool: " +
                             (stage.empty() ? std::string("not a complete kmoe artifact")
                                            : "made by kmoe " + stage + ", not kmoe panda learn"));
  ArtifactReader r(path);
  if (!r.has_attr("/", "complete") || r.attr_int64("/", "complete") != 1)
    throw std::runtime_error(path + ": an incomplete insight pool (its run did not finish)");
  InsightPool pool;
  pool.path = path;
  pool.task = r.attr_string("/", "task");
  pool.pairs = r.attr_string("/", "pairs");
  pool.ids = r.read_strings("ids");
  pool.keys = r.read_strings("keys");
  pool.answers = r.read_strings("answers");
  pool.preferred = r.read_strings("preferred");
  pool.rejected = r.read_strings("rejected");
  pool.insights = r.read_strings("insights");
  pool.preferred_score = r.read_floats("preferred_score");
  pool.rejected_score = r.read_floats("rejected_score");
  pool.has_pair = r.read_int64("has_pair");
  pool.key_embeddings = r.read_floats("key_embeddings");
  auto& d = pool.encoder;
  d.kind = r.attr_string("/", "encoder_kind");
  d.model = r.attr_string("/", "encoder_model");
  d.model_sha256 = r.attr_string("/", "encoder_model_sha256");
  d.pooling = r.attr_string("/", "pooling");
  d.normalize = r.attr_int64("/", "normalize") != 0;
  d.prefix = r.attr_string("/", "prefix");
  d.dim = r.attr_int64("/", "dim");
  d.max_tokens = r.attr_int64("/", "max_tokens");
  const size_t n = pool.keys.size();
  for (const auto* v : {&pool.ids, &pool.answers, &pool.preferred, &pool.rejected, &pool.insights}) {
    if (v->size() != n) throw std::runtime_error(path + ": its datasets differ in length");
  }
  if (pool.has_pair.size() != n || pool.key_embeddings.size() != n * static_cast<size_t>(d.dim))
    throw std::runtime_error(path + ": key_embeddings or has_pair do not match its " + std::to_string(n) + " keys");
  return pool;
}

InsightMode insight_mode_parse(const std::string& name) {
  if (name == "insights") return InsightMode::insights;
  if (name == "examples") return InsightMode::examples;
  if (name == "random") return InsightMode::random;
  throw std::invalid_argument("--insight-mode must be insights, examples or random, not '" + name + "'");
}

const char* insight_mode_name(InsightMode mode) {
  switch (mode) {
    case InsightMode::insights:
      return "insights";
    case InsightMode::examples:
      return "examples";
    case InsightMode::random:
      return "random";
  }
  return "?";
}

std::vector<std::vector<int64_t>> insight_nearest(const at::Tensor& queries, const at::Tensor& keys, int64_t k,
                                                  const std::vector<bool>& usable) {
  torch::NoGradGuard no_grad;
  const auto q = torch::nn::functional::normalize(queries.to(torch::kFloat64),
                                                  torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto kk = torch::nn::functional::normalize(keys.to(torch::kFloat64),
                                                   torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto cos = torch::matmul(q, kk.t()).contiguous();
  auto ca = cos.accessor<double, 2>();
  std::vector<std::vector<int64_t>> out(q.size(0));
  for (int64_t i = 0; i < q.size(0); ++i) {
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < kk.size(0); ++r) {
      if (usable[r]) rows.push_back(r);
    }
    const auto take = std::min<size_t>(k, rows.size());
    std::partial_sort(rows.begin(), rows.begin() + take, rows.end(), [&](int64_t a, int64_t b) {
      return ca[i][a] != ca[i][b] ? ca[i][a] > ca[i][b] : a < b;
    });
    out[i].assign(rows.begin(), rows.begin() + take);
  }
  return out;
}

std::vector<int64_t> insight_random(int64_t n, int64_t k, const std::vector<bool>& usable, uint64_t seed,
                                    int64_t index) {
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < n; ++r) {
    if (usable[r]) rows.push_back(r);
  }
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index) + 1);
  const int64_t take = std::min<int64_t>(k, rows.size());
  for (int64_t j = 0; j < take; ++j) {
    const uint64_t span = rows.size() - j;
    const int64_t pick = j + static_cast<int64_t>(rng() % span);
    std::swap(rows[j], rows[pick]);
  }
  rows.resize(take);
  return rows;
}

InsightTemplate insight_template_default(InsightMode mode) {
  if (mode == InsightMode::insights) {
    return {"Insights that may help:\n{items}\nNow answer this question.\n{question}",
            "Question: {key}\nInsight: {insight}\n"};
  }
  return {"Examples:\n{items}\nNow answer this question.\n{question}", "Question: {key}\nAnswer: {answer}\n"};
}

InsightTemplate insight_template_read(const std::string& path) {
  const std::string text = file_text(path, "the insight template");
  const std::string sep = "\n----\n";
  const auto at = text.find(sep);
  if (at == std::string::npos)
    throw std::invalid_argument(path + ": an insight template is the block, a line '----', then the item");
  InsightTemplate t{text.substr(0, at), text.substr(at + sep.size())};
  if (t.block.find("{items}") == std::string::npos || t.block.find("{question}") == std::string::npos)
    throw std::invalid_argument(path + ": the block (before '----') must hold {items} and {question}");
  return t;
}

std::string insight_render(const InsightTemplate& tmpl, const std::string& question, const InsightPool& pool,
                           const std::vector<int64_t>& rows) {
  std::string items;
  for (const int64_t r : rows) {
    items += panda_fill(tmpl.item, {{"key", pool.keys[r]},
                                    {"insight", pool.insights[r]},
                                    {"answer", pool.answers[r]},
                                    {"preferred", pool.preferred[r]},
                                    {"rejected", pool.rejected[r]}});
  }
  return panda_fill(tmpl.block, {{"items", items}, {"question", question}});
}

InsightPlan insight_plan(const MpiWorld& world, const InsightFlags& flags, const std::vector<KshotExample>& queries,
                         const std::string& command) {
  const std::string p = "kmoe " + command + ": ";
  InsightPlan plan;
  try {
    plan.mode = insight_mode_parse(flags.mode);
  } catch (const std::invalid_argument& e) {
    throw UsageError(p + e.what());
  }
  if (flags.k < 1) throw UsageError(p + "--insight-k must be >= 1");
  plan.k = flags.k;
  plan.tmpl = flags.template_file.empty() ? insight_template_default(plan.mode) : insight_template_read(flags.template_file);
  const InsightPool pool = insight_pool_read(flags.pool);
  // Nothing of the query set is ever a key: a pool row whose key is a query's is left out.
  std::set<std::string> query_keys;
  for (const auto& q : queries) query_keys.insert(panda_key(q));
  std::vector<bool> usable(pool.size());
  int64_t n_usable = 0;
  for (int64_t r = 0; r < pool.size(); ++r) {
    const bool query = query_keys.count(pool.keys[r]) > 0;
    plan.excluded += query;
    usable[r] = !query && (plan.mode != InsightMode::insights || pool.has_pair[r]);
    n_usable += usable[r];
  }
  if (n_usable < flags.k) {
    throw std::invalid_argument(flags.pool + ": " + std::to_string(n_usable) + " of its " +
                                std::to_string(pool.size()) + " rows can be used (" + std::to_string(plan.excluded) +
                                " hold a query of this run, " +
                                (plan.mode == InsightMode::insights ? "rows without a pair have no insight" : "") +
                                "), fewer than --insight-k " + std::to_string(flags.k));
  }
  const auto n_q = static_cast<int64_t>(queries.size());
  std::string reply;
  if (world.is_root()) {
    nlohmann::json j;
    try {
      std::vector<int64_t> rows;
      if (plan.mode == InsightMode::random) {
        for (int64_t i = 0; i < n_q; ++i) {
          const auto r = insight_random(pool.size(), flags.k, usable, flags.seed, i);
          rows.insert(rows.end(), r.begin(), r.end());
        }
      } else {
        EncoderSpec spec = encoder_spec_of(pool.encoder);
        if (!flags.encoder_model.empty()) spec.model = flags.encoder_model;
        const auto encoder = encoder_load(spec);
        const std::string diff = encoder_difference(pool.encoder, encoder->describe());
        if (!diff.empty())
          throw std::invalid_argument(flags.pool + ": made with another encoder than " + spec.model + ": " + diff);
        std::vector<std::string> texts;
        for (const auto& q : queries) texts.push_back(panda_key(q));
        const at::Tensor qe = encoder->encode(texts);
        const at::Tensor ke = torch::from_blob(const_cast<float*>(pool.key_embeddings.data()),
                                               {pool.size(), pool.encoder.dim}, torch::kFloat32);
        for (const auto& r : insight_nearest(qe, ke, flags.k, usable)) rows.insert(rows.end(), r.begin(), r.end());
      }
      j["rows"] = rows;
    } catch (const std::exception& e) {
      j["error"] = e.what();
    }
    reply = j.dump();
  }
  const auto j = nlohmann::json::parse(mpi_bcast_string(world, reply));
  if (j.contains("error")) throw std::runtime_error(j["error"].get<std::string>());
  plan.rows = j["rows"].get<std::vector<int64_t>>();
  for (int64_t i = 0; i < n_q; ++i) {
    KshotExample ex = queries[i];
    const std::vector<int64_t> rows(plan.rows.begin() + i * flags.k, plan.rows.begin() + (i + 1) * flags.k);
    ex.instruction = insight_render(plan.tmpl, ex.instruction, pool, rows);
    plan.examples.push_back(std::move(ex));
  }
  log_info(command, ": ", insight_mode_name(plan.mode), " of ", flags.k, " pool rows per query from ", flags.pool,
           " (", pool.size(), " rows, ", plan.excluded, " left out: their key is a query's)");
  return plan;
}

void insight_spec_add(StageSpec& spec, const InsightFlags& flags, const std::string& command) {
  InsightTemplate tmpl;
  try {
    tmpl = flags.template_file.empty() ? insight_template_default(insight_mode_parse(flags.mode))
                                       : insight_template_read(flags.template_file);
  } catch (const std::invalid_argument& e) {
    throw UsageError("kmoe " + command + ": " + e.what());
  }
  spec.inputs.emplace_back("insights", flags.pool);
  spec.options["insight_k"] = flags.k;
  spec.options["insight_mode"] = flags.mode;
  spec.options["insight_template"] = tmpl.block + "\n----\n" + tmpl.item;
  if (flags.mode == "random") spec.options["insight_seed"] = flags.seed;
}

void insight_plan_write(ArtifactWriter& w, const InsightPlan& plan) {
  const int64_t n = plan.k > 0 ? static_cast<int64_t>(plan.rows.size()) / plan.k : 0;
  w.write_int64("insight_rows", {n, plan.k}, plan.rows.data());
  w.set_attr("insight_rows", "note",
             std::string("per example, the rows of the insight pool put before its question, best first"));
  w.set_attr("/", "insight_mode", std::string(insight_mode_name(plan.mode)));
  w.set_attr("/", "insight_excluded", plan.excluded);
}

}  // namespace kmoe
