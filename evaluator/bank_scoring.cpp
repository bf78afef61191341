// See bank_scoring.h. Every rank loads the base once and keeps at most two adapters resident
// (least recently used evicted): units of one adapter tend to follow each other in the queue.
// Skipped adapters (--skip-bad-adapters) are journalled as units too, with their reason, so a
// resumed run does not retry them and the artifact records why. A mixture of LoRA experts
// (--moe moe.h5) is one more row after the bank's, named after its file's stem; it is loaded
// once per rank and stays resident.
#include "evaluator/bank_scoring.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <optional>

#include "data/formats/model_files.h"
#include "data/formats/moe_file.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/peft_prompt.h"
#include "data/store/artifact.h"
#include "evaluator/panda.h"
#include "model/cpu_threads.h"
#include "model/lora.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"
#include "runtime/unit_journal.h"
#include "runtime/work_units.h"

namespace kmoe {

namespace fs = std::filesystem;

namespace {

std::vector<int64_t> encode(const Tokenizer& tok, const std::string& text, bool add_special) {
  const auto ids = tok.encode(text, add_special);
  return {ids.begin(), ids.end()};
}

int64_t utf8_chars(const std::string& s) {
  int64_t n = 0;
  for (size_t i = 0; i < s.size(); i += utf8_char_length(s, i)) ++n;
  return n;
}

}  // namespace

std::vector<std::vector<size_t>> length_batches(const std::vector<int64_t>& lengths, int64_t batch) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i < order.size(); i += batch) {
    out.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + static_cast<size_t>(batch)));
  }
  return out;
}

std::vector<ScoringItem> scoring_prepare(const std::vector<KshotExample>& examples, const Tokenizer& tokenizer,
                                         const ScoringOptions& options, const std::string& kshot_path) {
  const bool add_special = options.prompt.style == PromptStyle::alpaca;
  std::vector<ScoringItem> items;
  for (const auto& ex : examples) {
    ScoringItem it;
    it.answer = options.answer;
    it.answer.n_choices = static_cast<int64_t>(ex.choices.size());
    try {
      if (options.answer.format == AnswerFormat::choice && ex.choices.empty()) {
        throw std::invalid_argument("answer format choice needs choices");
      }
      it.gold = answer_normalize_gold(it.answer, ex.answer);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(kshot_path + ":" + std::to_string(ex.line) + ": " + e.what());
    }
    it.prompt_ids = encode(tokenizer, prompt_render(options.prompt, ex), add_special);
    it.answer_ids = encode(tokenizer, prompt_answer_target(options.prompt, ex), false);
    it.reasoning_ids = encode(tokenizer, prompt_reasoning_target(options.prompt, ex), false);
    it.has_rationale = !ex.rationale.empty();
    if (it.prompt_ids.empty() || it.answer_ids.empty()) {
      throw std::invalid_argument(kshot_path + ":" + std::to_string(ex.line) + ": empty prompt or answer tokens");
    }
    for (size_t c = 0; c < ex.choices.size(); ++c) {
      const std::string target = prompt_choice_target(options.prompt, ex.choices[c]);
      it.choice_ids.push_back(encode(tokenizer, target, false));
      it.choice_chars.push_back(std::max<int64_t>(1, utf8_chars(target)));
      if (kshot_choice_letter(c) == ex.answer) it.gold_choice = static_cast<int64_t>(c);
    }
    items.push_back(std::move(it));
  }
  return items;
}

std::vector<ExampleScore> scoring_run(const LlamaModel& model, const Tokenizer& tokenizer,
                                      const std::vector<ScoringItem>& items, const ScoringOptions& options,
                                      const LinearHook* hook) {
  torch::NoGradGuard no_grad;
  std::vector<ExampleScore> out(items.size());
  // Continuation requests: (item, kind) with kind 0 answer, 1 reasoning, 2+c option c.
  struct Request {
    size_t item;
    int64_t kind;
  };
  std::vector<Request> requests;
  auto target_of = [&](const Request& r) -> const std::vector<int64_t>& {
    const auto& it = items[r.item];
    return r.kind == 0 ? it.answer_ids : r.kind == 1 ? it.reasoning_ids : it.choice_ids[r.kind - 2];
  };
  std::vector<std::vector<size_t>> requests_of(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto add = [&](int64_t kind) {
      requests_of[i].push_back(requests.size());
      requests.push_back({i, kind});
    };
    add(0);
    if (items[i].has_rationale) add(1);
    for (size_t c = 0; c < items[i].choice_ids.size(); ++c) add(static_cast<int64_t>(c) + 2);
  }
  std::vector<double> sum_logp(requests.size());
  std::vector<int64_t> prompt_lengths;
  for (const auto& it : items) prompt_lengths.push_back(it.prompt_ids.size());
  GenerateOptions gen;
  gen.max_new_tokens = options.max_new_tokens;
  gen.stop_token_ids = options.stop_ids;
  // Each batch of prompts runs once; its KV cache serves every continuation of its items,
  // --batch-size continuations per forward (sorted by length), then the greedy replies.
  for (const auto& batch : length_batches(prompt_lengths, options.batch_size)) {
    std::vector<std::vector<int64_t>> prompts;
    for (const size_t i : batch) prompts.push_back(items[i].prompt_ids);
    PromptPrefill prefill = llama_prefill(model, prompts, hook);
    std::vector<size_t> mine;  // request indices of this batch
    std::vector<int64_t> local_prompt(requests.size()), cont_lengths;
    for (size_t j = 0; j < batch.size(); ++j) {
      for (const size_t k : requests_of[batch[j]]) {
        local_prompt[k] = static_cast<int64_t>(j);
        mine.push_back(k);
        cont_lengths.push_back(static_cast<int64_t>(target_of(requests[k]).size()));
      }
    }
    for (const auto& group : length_batches(cont_lengths, options.batch_size)) {
      std::vector<std::pair<int64_t, std::vector<int64_t>>> conts;
      for (const size_t g : group) conts.emplace_back(local_prompt[mine[g]], target_of(requests[mine[g]]));
      const auto logp = llama_prefix_logprobs(model, prefill, conts, hook);
      for (size_t g = 0; g < group.size(); ++g) sum_logp[mine[group[g]]] = logp[g].to(torch::kFloat64).sum().item<double>();
    }
    if (options.max_new_tokens <= 0) continue;
    const auto replies = llama_generate_prefilled(model, std::move(prefill), gen, hook);
    for (size_t j = 0; j < batch.size(); ++j) {
      const std::vector<int32_t> ids(replies[j].begin(), replies[j].end());
      const auto& it = items[batch[j]];
      out[batch[j]].reply = utf8_sanitize(tokenizer.decode(ids, /*skip_special=*/true));
      out[batch[j]].prediction = answer_extract(it.answer, out[batch[j]].reply);
      out[batch[j]].correct = !out[batch[j]].prediction.empty() && out[batch[j]].prediction == it.gold;
    }
  }
  std::vector<std::vector<double>> option_ll(items.size());
  for (size_t k = 0; k < requests.size(); ++k) {
    const auto& r = requests[k];
    const auto& it = items[r.item];
    auto& s = out[r.item];
    if (r.kind == 0) {
      s.nll = -sum_logp[k];
      s.ppl = std::exp(s.nll / static_cast<double>(it.answer_ids.size()));
      if (!it.has_rationale) s.ppl_reasoning = s.ppl;
    } else if (r.kind == 1) {
      s.ppl_reasoning = std::exp(-sum_logp[k] / static_cast<double>(it.reasoning_ids.size()));
    } else {
      option_ll[r.item].push_back(sum_logp[k]);
    }
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& ll = option_ll[i];
    if (ll.empty()) continue;
    size_t best = 0, best_norm = 0;
    for (size_t c = 1; c < ll.size(); ++c) {
      if (ll[c] > ll[best]) best = c;
      if (ll[c] / items[i].choice_chars[c] > ll[best_norm] / items[i].choice_chars[best_norm]) best_norm = c;
    }
    out[i].ll_correct = static_cast<int64_t>(best) == items[i].gold_choice;
    out[i].ll_norm_correct = static_cast<int64_t>(best_norm) == items[i].gold_choice;
    out[i].option_ll = ll;
  }
  return out;
}

std::vector<BankEntry> bank_list(const std::string& path) {
  std::vector<BankEntry> out;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path)) {
      if (e.is_directory() && fs::exists(e.path() / "adapter_config.json")) {
        out.push_back({e.path().filename().string(), e.path().string()});
      }
    }
    std::sort(out.begin(), out.end(), [](const BankEntry& a, const BankEntry& b) { return a.name < b.name; });
    if (out.empty()) throw std::invalid_argument(path + ": no subfolder with adapter_config.json");
    return out;
  }
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open the bank (a folder of adapters or a list file)");
  std::string line;
  int64_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    std::string p = line.substr(b, line.find_last_not_of(" \t\r") - b + 1);
    if (fs::path(p).is_relative()) p = (fs::path(path).parent_path() / p).string();
    std::string name = fs::path(p).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(p).lexically_normal().parent_path().filename().string();
    for (const auto& e : out) {
      if (e.name == name)
        throw std::invalid_argument(path + ":" + std::to_string(n) + ": adapter name '" + name + "' appears twice");
    }
    out.push_back({name, p});
  }
  if (out.empty()) throw std::invalid_argument(path + ": the bank list names no adapter");
  return out;
}

namespace {

// Each rank's model and its resident adapters, loaded on first use.
struct RankModel {
  std::optional<ModelFiles> files;
  std::optional<LlamaModel> model;
  std::unique_ptr<LoraSet> lora;
  std::list<std::string> lru;  // resident adapters, most recent first
  std::map<std::string, std::unique_ptr<MoeLora>> moes;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
};

struct ScoreConfig {
  std::string model_path, kshot_path, bank_path, output, soft_prompt;
  std::vector<std::string> moe_paths;
  ScoringOptions scoring;
  int64_t chunk_size = 16;
  bool skip_bad = false;
  std::string device = "auto";
  ComputeDtype dtype;
};

// The rows of scores.h5: "base", the bank's adapters, then each MoE file named after its stem
// (from index `first_moe` on). Throws UsageError when a MoE's name is taken.
std::vector<BankEntry> score_rows(const std::vector<BankEntry>& bank, const std::vector<std::string>& moe_paths,
                                  size_t& first_moe) {
  std::vector<BankEntry> rows{{"base", ""}};
  rows.insert(rows.end(), bank.begin(), bank.end());
  first_moe = rows.size();
  for (const auto& path : moe_paths) {
    const std::string name = fs::path(path).stem().empty() ? "moe" : fs::path(path).stem().string();
    for (const auto& r : rows) {
      if (r.name == name)
        throw UsageError(std::string("kmoe score: --moe ")
                             .append(path)
                             .append(": its row name '")
                             .append(name)
                             .append("' is taken by another row"));
    }
    rows.push_back({name, path});
  }
  return rows;
}

// One rank's side of the work units: unit = row (adapter) x chunk of examples. The model,
// the tokenised examples and the adapters load on first use, so a rank whose units were
// all done before a kill loads nothing.
class ScoreWorker {
 public:
  ScoreWorker(const MpiWorld& world, ScoreConfig cfg, const std::vector<KshotExample>& examples,
              const std::vector<BankEntry>& rows, size_t first_moe)
      : world_(world),
        cfg_(std::move(cfg)),
        examples_(examples),
        rows_(rows),
        first_moe_(first_moe),
        n_samples_(static_cast<int64_t>(examples.size())),
        n_chunks_((n_samples_ + cfg_.chunk_size - 1) / cfg_.chunk_size) {}

  UnitTensors unit(int64_t unit) {
    const int64_t a = unit / n_chunks_, c = unit % n_chunks_;
    const int64_t begin = c * cfg_.chunk_size, end = std::min(n_samples_, begin + cfg_.chunk_size);
    ensure_model();
    std::map<std::string, at::Tensor> t;
    const LinearHook* hook = nullptr;
    std::string skip_reason;
    try {
      hook = hook_for(a);
    } catch (const std::exception& e) {
      if (!cfg_.skip_bad) throw;
      skip_reason = e.what();
    }
    const int64_t n = end - begin;
    if (!skip_reason.empty()) {
      t["skipped"] = torch::ones({1}, torch::kInt64);
      t["reason"] = unit_journal_bytes(skip_reason);
    } else {
      const std::vector<ScoringItem> chunk(items_.begin() + begin, items_.begin() + end);
      const auto scores = scoring_run(*rm_.model, *rm_.files->tokenizer, chunk, cfg_.scoring, hook);
      at::Tensor f = torch::zeros({3, n}, torch::kFloat64);       // nll, ppl, ppl_reasoning [3, n]
      at::Tensor i64 = torch::zeros({3, n}, torch::kInt64);       // correct, ll_correct, ll_norm_correct
      at::Tensor offsets = torch::zeros({n + 1}, torch::kInt64);  // into the concatenated predictions
      auto fa = f.accessor<double, 2>();
      auto ia = i64.accessor<int64_t, 2>();
      auto oa = offsets.accessor<int64_t, 1>();
      std::string preds;
      for (int64_t k = 0; k < n; ++k) {
        fa[0][k] = scores[k].nll;
        fa[1][k] = scores[k].ppl;
        fa[2][k] = scores[k].ppl_reasoning;
        ia[0][k] = scores[k].correct;
        ia[1][k] = scores[k].ll_correct;
        ia[2][k] = scores[k].ll_norm_correct;
        preds += scores[k].prediction;
        oa[k + 1] = static_cast<int64_t>(preds.size());
      }
      t["skipped"] = torch::zeros({1}, torch::kInt64);
      t["floats"] = f;
      t["ints"] = i64;
      t["predictions"] = unit_journal_bytes(preds);
      t["offsets"] = offsets;
    }
    return t;
  }

 private:
  void ensure_model() {
    if (rm_.model) return;
    rm_.files = model_files_load(cfg_.model_path);
    rm_.device = cfg_.device == "cuda" ? torch::Device(torch::kCUDA, world_.local_rank) : torch::Device(torch::kCPU);
    rm_.dtype = cfg_.dtype.type;
    rm_.model = llama_from_weights(rm_.files->config, std::move(rm_.files->weights), rm_.device, rm_.dtype);
    if (!cfg_.soft_prompt.empty()) peft_prompt_apply(cfg_.soft_prompt, *rm_.model);
    rm_.lora = std::make_unique<LoraSet>(rm_.files->config);
    ScoringOptions o = cfg_.scoring;
    if (o.prompt.style == PromptStyle::chat) o.prompt.chat = model_chat_template(*rm_.files);
    o.stop_ids = rm_.files->stop_token_ids;
    cfg_.scoring = o;
    items_ = scoring_prepare(examples_, *rm_.files->tokenizer, cfg_.scoring, cfg_.kshot_path);
  }

  // The hook for row `a`; nullptr for the base. Throws naming the adapter when it cannot load.
  const LinearHook* hook_for(int64_t a) {
    if (a == 0) return nullptr;
    const std::string& name = rows_[a].name;
    if (static_cast<size_t>(a) >= first_moe_) {
      auto& moe = rm_.moes[name];
      if (!moe) {
        try {
          moe = std::make_unique<MoeLora>(moe_read(rows_[a].path, rm_.files->config));
        } catch (const std::exception& e) {
          rm_.moes.erase(name);
          throw std::runtime_error("MoE '" + name + "' (" + rows_[a].path + "): " + e.what());
        }
        moe->to(rm_.device, rm_.dtype);
      }
      return moe.get();
    }
    if (!rm_.lora->has(name)) {
      LoraAdapter adapter;
      try {
        adapter = peft_adapter_load(rows_[a].path, rm_.files->config, name);
        lora_adapter_validate(adapter, rm_.files->config);
      } catch (const std::exception& e) {
        throw std::runtime_error("adapter '" + name + "' (" + rows_[a].path + "): " + e.what());
      }
      lora_adapter_to(adapter, rm_.device, rm_.dtype);
      while (rm_.lru.size() >= 2) {
        rm_.lora->remove(rm_.lru.back());
        rm_.lru.pop_back();
      }
      rm_.lora->add(std::move(adapter));
      rm_.lru.push_front(name);
    } else {
      rm_.lru.remove(name);
      rm_.lru.push_front(name);
    }
    rm_.lora->activate(name);
    return rm_.lora.get();
  }

  const MpiWorld& world_;
  ScoreConfig cfg_;
  const std::vector<KshotExample>& examples_;
  const std::vector<BankEntry>& rows_;
  const size_t first_moe_;
  const int64_t n_samples_, n_chunks_;
  RankModel rm_;
  std::vector<ScoringItem> items_;
};

// Reads every unit back from the journal (every rank: a shared folder) and writes scores.h5.
void score_write(const MpiWorld& world, const ScoreConfig& cfg, const Provenance& prov, const UnitJournal& journal,
                 const std::vector<BankEntry>& rows, const std::vector<KshotExample>& examples,
                 const InsightPlan* plan) {
  const int64_t n_samples = examples.size();
  const int64_t n_adapters = rows.size();
  const int64_t n_chunks = (n_samples + cfg.chunk_size - 1) / cfg.chunk_size;
  const int64_t n_units = n_adapters * n_chunks;
  // Every rank reads the journal (a shared folder) and holds the same tables.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> nll(n_adapters * n_samples, nan), ppl(nll), ppl_r(nll);
  std::vector<int64_t> correct(n_adapters * n_samples, 0);
  std::vector<int64_t> ll_c(n_adapters * n_samples, -1), ll_nc(n_adapters * n_samples, -1);
  std::vector<std::string> prediction(n_adapters * n_samples);
  std::vector<int64_t> skipped(n_adapters, 0);
  std::vector<std::string> reasons(n_adapters);
  for (int64_t u = 0; u < n_units; ++u) {
    const auto t = journal.read(u);
    const int64_t a = u / n_chunks, begin = (u % n_chunks) * cfg.chunk_size;
    if (t.at("skipped").item<int64_t>()) {
      skipped[a] = 1;
      reasons[a] = unit_journal_text(t.at("reason"));
      continue;
    }
    const auto f = t.at("floats").contiguous();
    const auto iv = t.at("ints").contiguous();
    const auto off = t.at("offsets").contiguous();
    auto fa = f.accessor<double, 2>();
    auto ia = iv.accessor<int64_t, 2>();
    auto oa = off.accessor<int64_t, 1>();
    const std::string preds = unit_journal_text(t.at("predictions"));
    for (int64_t k = 0; k < f.size(1); ++k) {
      const int64_t i = a * n_samples + begin + k;
      nll[i] = static_cast<float>(fa[0][k]);
      ppl[i] = static_cast<float>(fa[1][k]);
      ppl_r[i] = static_cast<float>(fa[2][k]);
      correct[i] = ia[0][k];
      ll_c[i] = ia[1][k];
      ll_nc[i] = ia[2][k];
      prediction[i] = preds.substr(oa[k], oa[k + 1] - oa[k]);
    }
  }
  std::vector<float> acc(n_adapters, nan), ppl_sum(n_adapters, nan), acc_ll(n_adapters, nan),
      acc_ll_norm(n_adapters, nan);
  bool any_mc = false;
  for (int64_t a = 0; a < n_adapters; ++a) {
    if (skipped[a]) continue;
    double c = 0, s = 0, l = 0, ln = 0;
    int64_t mc = 0;
    for (int64_t k = 0; k < n_samples; ++k) {
      const int64_t i = a * n_samples + k;
      c += correct[i];
      s += ppl_r[i];
      if (ll_c[i] >= 0) {
        ++mc;
        l += ll_c[i];
        ln += ll_nc[i];
      }
    }
    acc[a] = static_cast<float>(c / n_samples);
    ppl_sum[a] = static_cast<float>(s);
    if (mc > 0) {
      any_mc = true;
      acc_ll[a] = static_cast<float>(l / mc);
      acc_ll_norm[a] = static_cast<float>(ln / mc);
    }
  }
  std::vector<std::string> names, paths, ids;
  for (const auto& r : rows) {
    names.push_back(r.name);
    paths.push_back(r.path.empty() ? cfg.model_path : r.path);
  }
  std::vector<int64_t> reasoning_is_answer;
  for (const auto& e : examples) {
    ids.push_back(e.id);
    reasoning_is_answer.push_back(e.rationale.empty() ? 1 : 0);
  }
  ArtifactWriter w(world.comm, cfg.output, prov);
  const std::vector<int64_t> as{n_adapters, n_samples};
  w.write_strings("adapters", names);
  w.write_strings("adapter_paths", paths);
  w.write_strings("samples", ids);
  w.write_floats("nll", as, nll.data());
  w.write_floats("ppl", as, ppl.data());
  w.write_floats("ppl_reasoning", as, ppl_r.data());
  w.write_int64("ppl_reasoning_is_answer", {n_samples}, reasoning_is_answer.data());
  w.write_int64("correct", as, correct.data());
  w.write_strings("prediction", prediction);
  w.set_attr("prediction", "layout", std::string("adapters x samples, row-major, flattened"));
  w.write_floats("acc", {n_adapters}, acc.data());
  w.write_floats("ppl_sum", {n_adapters}, ppl_sum.data());
  if (any_mc) {
    w.write_floats("acc_ll", {n_adapters}, acc_ll.data());
    w.write_floats("acc_ll_norm", {n_adapters}, acc_ll_norm.data());
  }
  w.write_int64("skipped", {n_adapters}, skipped.data());
  w.write_strings("skipped_reason", reasons);
  std::string all_reasons;
  for (int64_t a = 0; a < n_adapters; ++a) {
    if (skipped[a]) all_reasons += (all_reasons.empty() ? "" : "\n") + names[a] + ": " + reasons[a];
  }
  w.set_attr("skipped", "reasons", all_reasons);
  if (plan) insight_plan_write(w, *plan);
  w.commit();
  for (int64_t a = 0; a < n_adapters; ++a) {
    if (skipped[a]) log_warn("skipped adapter ", names[a], ": ", reasons[a]);
  }
}

}  // namespace

StageOutcome score_stage(const MpiWorld& world, const ScoreOptions& options) {
  if (options.model.empty() || options.kshot.empty()) throw UsageError("kmoe score: --model and --kshot are required");
  ScoreConfig cfg;
  cfg.model_path = options.model;
  cfg.kshot_path = options.kshot;
  cfg.bank_path = options.bank;
  cfg.moe_paths = options.moe;
  cfg.output = options.output;
  cfg.skip_bad = options.skip_bad_adapters;
  ScoringCommandOptions common = scoring_options_resolve(options.scoring, "score");
  cfg.scoring = std::move(common.scoring);
  cfg.chunk_size = common.chunk_size;
  cfg.device = common.device;
  cfg.dtype = common.dtype;
  cfg.soft_prompt = common.soft_prompt;

  const auto examples = kshot_load(cfg.kshot_path);
  const auto bank = cfg.bank_path.empty() ? std::vector<BankEntry>{} : bank_list(cfg.bank_path);
  size_t first_moe = 0;
  const std::vector<BankEntry> rows = score_rows(bank, cfg.moe_paths, first_moe);

  StageSpec spec;
  spec.stage = "score";
  spec.output = cfg.output;
  spec.force = options.force;
  spec.options = {{"prompt_format", options.scoring.prompt_format},
                  {"answer_format", options.scoring.answer_format},
                  {"answer_regex", cfg.scoring.answer.regex},
                  {"max_new_tokens", cfg.scoring.max_new_tokens},
                  {"batch_size", cfg.scoring.batch_size},
                  {"chunk_size", cfg.chunk_size},
                  {"skip_bad_adapters", cfg.skip_bad},
                  {"device", cfg.device}};
  // Recorded when not float32, so float32 artifacts made before --dtype existed stay complete.
  if (cfg.dtype.name != "float32") spec.options["dtype"] = cfg.dtype.name;
  spec.inputs = {{"model", cfg.model_path}, {"kshot", cfg.kshot_path}};
  if (!cfg.soft_prompt.empty()) spec.inputs.emplace_back("soft_prompt", cfg.soft_prompt);
  for (const auto& e : bank) spec.inputs.emplace_back("adapter/" + e.name, e.path);
  for (size_t a = first_moe; a < rows.size(); ++a) spec.inputs.emplace_back("moe/" + rows[a].name, rows[a].path);
  if (!options.insights.pool.empty()) insight_spec_add(spec, options.insights, "score");

  const int64_t n_samples = examples.size();
  const int64_t n_adapters = rows.size();
  const int64_t n_units = n_adapters * ((n_samples + cfg.chunk_size - 1) / cfg.chunk_size);
  const auto outcome = stage_run(world, spec, [&](const Provenance& prov) {
    UnitJournal journal(world.comm, cfg.output, provenance_fingerprint(prov), spec.force);
    const int64_t already = static_cast<int64_t>(journal.done_units().size());
    log_info("score: ", n_adapters, " adapters (base included) x ", n_samples, " examples = ", n_units,
             " units; skipping ", already, " units already done, ", n_units - already, " to do");
    // PANDA: each question with the pool rows nearest to it put before it (the answers,
    // rationales and ids stay the K-shot set's).
    std::optional<InsightPlan> plan;
    if (!options.insights.pool.empty()) plan = insight_plan(world, options.insights, examples, "score");
    ScoreWorker worker(world, cfg, plan ? plan->examples : examples, rows, first_moe);
    work_units_run(world, journal, {"scoring", n_units}, [&](int64_t unit) { return worker.unit(unit); });
    score_write(world, cfg, prov, journal, rows, examples, plan ? &*plan : nullptr);
    journal.remove();
  });
  log_info("score: ", outcome.skipped ? "skipped: " : "", outcome.reason, " -> ", cfg.output);
  return outcome;
}

ScoringCommandOptions scoring_options_resolve(const ScoringFlags& flags, const std::string& command) {
  const std::string prefix = std::string("kmoe ").append(command).append(": ");
  if (flags.threads != 0) cpu_threads_set(flags.threads);
  ScoringCommandOptions o;
  o.chunk_size = flags.chunk_size;
  o.device = flags.device;
  o.soft_prompt = flags.soft_prompt;
  o.scoring.max_new_tokens = flags.max_new_tokens;
  o.scoring.batch_size = flags.batch_size;
  try {
    o.scoring.prompt.style = prompt_style_parse(flags.prompt_format);
    o.scoring.answer.format = answer_format_parse(flags.answer_format);
  } catch (const std::invalid_argument& e) {
    throw UsageError(prefix + e.what());
  }
  o.scoring.answer.regex = flags.answer_regex;
  if (o.scoring.answer.format == AnswerFormat::regex && o.scoring.answer.regex.empty()) {
    throw UsageError(prefix + "--answer-format regex needs --answer-regex");
  }
  if (o.chunk_size <= 0 || o.scoring.batch_size <= 0 || o.scoring.max_new_tokens < 0) {
    throw UsageError(prefix + "--chunk-size and --batch-size must be positive, --max-new-tokens >= 0");
  }
  if (o.device == "auto") o.device = torch::cuda::is_available() ? "cuda" : "cpu";
  if (o.device != "cpu" && o.device != "cuda") throw UsageError(prefix + "--device must be auto, cpu or cuda");
  if (o.device == "cuda" && !torch::cuda::is_available())
    throw UsageError(prefix +
                     "--device cuda, but libtorch sees no CUDA device on this machine (use --device cpu or auto)");
  try {
    o.dtype = compute_dtype_resolve(flags.dtype, o.device);
  } catch (const std::invalid_argument& e) {
    throw UsageError(prefix + e.what());
  }
  if (!o.dtype.warning.empty()) log_warn(command, ": ", o.dtype.warning);
  return o;
}

}  // namespace kmoe
