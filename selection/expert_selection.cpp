// See expert_selection.h. The subset search is a recursion over candidates in ascending
// order carrying the running pair-cosine and rank sums, so each subset costs O(N) additions
// and no allocation; C(20, 10) = 184,756 subsets take milliseconds. Rank 0 loads the
// adapters and scores the subsets; the other ranks only join the collective write.
#include "selection/expert_selection.h"

#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>

#include "data/store/artifact.h"
#include "data/formats/peft_adapter.h"
#include "data/formats/safetensors.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

namespace fs = std::filesystem;

RankSignals rank_signals_parse(const std::string& name) {
  if (name == "both") return RankSignals::both;
  if (name == "accuracy") return RankSignals::accuracy;
  if (name == "perplexity") return RankSignals::perplexity;
  throw UsageError("--signals must be both, accuracy or perplexity, not '" + name + "'");
}

const char* rank_signals_name(RankSignals signals) {
  switch (signals) {
    case RankSignals::both:
      return "both";
    case RankSignals::accuracy:
      return "accuracy";
    case RankSignals::perplexity:
      return "perplexity";
  }
  return "both";
}

namespace {

void check_sizes(const std::vector<double>& ppl_sum, const std::vector<double>& acc,
                 const std::vector<std::string>& names) {
  if (ppl_sum.size() != acc.size() || names.size() != acc.size()) {
    throw std::invalid_argument("ranking: ppl_sum, acc and names differ in length (" + std::to_string(ppl_sum.size()) +
                                ", " + std::to_string(acc.size()) + ", " + std::to_string(names.size()) + ")");
  }
}

// Ranks 1..n from a strict weak "better than" order made total by the name.
template <typename Better>
std::vector<int64_t> ranks_from(size_t count, const std::vector<std::string>& names, Better better) {
  std::vector<int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) {
    if (better(i, j)) return true;
    if (better(j, i)) return false;
    return names[i] < names[j];
  });
  std::vector<int64_t> rank(count);
  for (size_t k = 0; k < count; ++k) rank[order[k]] = static_cast<int64_t>(k) + 1;
  return rank;
}

}  // namespace

std::vector<int64_t> rank_by_perplexity(const std::vector<double>& ppl_sum, const std::vector<double>& acc,
                                        const std::vector<std::string>& names) {
  check_sizes(ppl_sum, acc, names);
  return ranks_from(acc.size(), names, [&](int64_t i, int64_t j) {
    if (ppl_sum[i] != ppl_sum[j]) return ppl_sum[i] < ppl_sum[j];
    return acc[i] > acc[j];
  });
}

std::vector<int64_t> rank_by_accuracy(const std::vector<double>& ppl_sum, const std::vector<double>& acc,
                                      const std::vector<std::string>& names) {
  check_sizes(ppl_sum, acc, names);
  return ranks_from(acc.size(), names, [&](int64_t i, int64_t j) {
    if (acc[i] != acc[j]) return acc[i] > acc[j];
    return ppl_sum[i] < ppl_sum[j];
  });
}

int64_t rank_combined(int64_t r_p, int64_t r_a, RankSignals signals) {
  switch (signals) {
    case RankSignals::accuracy:
      return r_a;
    case RankSignals::perplexity:
      return r_p;
    case RankSignals::both:
      break;
  }
  return r_p + r_a;
}

std::vector<int64_t> candidates_pick(const std::vector<int64_t>& r_p, const std::vector<int64_t>& r_a,
                                     const std::vector<std::string>& names, RankSignals signals, int64_t m) {
  const int64_t count = static_cast<int64_t>(names.size());
  if (static_cast<int64_t>(r_p.size()) != count || static_cast<int64_t>(r_a.size()) != count) {
    throw std::invalid_argument("candidates_pick: R_P, R_A and names differ in length");
  }
  if (m < 1 || m > count) {
    throw std::invalid_argument("M = " + std::to_string(m) + " but the bank has " + std::to_string(count) +
                                " eligible adapters");
  }
  std::vector<int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) {
    const int64_t ri = rank_combined(r_p[i], r_a[i], signals), rj = rank_combined(r_p[j], r_a[j], signals);
    if (ri != rj) return ri < rj;
    if (r_a[i] != r_a[j]) return r_a[i] < r_a[j];
    return names[i] < names[j];
  });
  order.resize(m);
  return order;
}

LoraAdapter lora_adapter_read(const std::string& dir, const std::string& name) {
  const fs::path d(dir);
  const fs::path config_path = d / "adapter_config.json";
  std::ifstream in(config_path, std::ios::binary);
  if (!in) throw std::invalid_argument(config_path.string() + ": cannot be read (not a PEFT adapter folder?)");
  std::ostringstream text;
  text << in.rdbuf();
  LoraAdapter adapter;
  adapter.name = name;
  adapter.config = peft_config_parse(text.str(), config_path.string());
  const std::string weights_path = (d / "adapter_model.safetensors").string();
  if (!fs::exists(weights_path)) throw std::invalid_argument(weights_path + ": missing");
  SafetensorsFile file(weights_path);
  int64_t max_layer = -1;
  for (const auto& [key, entry] : file.entries()) {
    const std::string marker = ".layers.";
    const size_t at = key.find(marker);
    if (at == std::string::npos)
      throw std::invalid_argument(weights_path + ": tensor '" + key + "' is not a LoRA factor");
    max_layer = std::max<int64_t>(max_layer, std::atoll(key.c_str() + at + marker.size()));
  }
  size_t used = 0;
  for (int64_t layer = 0; layer <= max_layer; ++layer) {
    for (int mi = 0; mi <= static_cast<int>(LinearModule::down_proj); ++mi) {
      const auto module = static_cast<LinearModule>(mi);
      const std::string ka = peft_tensor_key(layer, module, 'A'), kb = peft_tensor_key(layer, module, 'B');
      if (!file.has(ka) && !file.has(kb)) continue;
      if (!file.has(ka) || !file.has(kb)) {
        throw std::invalid_argument(weights_path + ": '" + (file.has(ka) ? ka : kb) + "' has no " +
                                    (file.has(ka) ? "lora_B" : "lora_A") + " partner");
      }
      LoraWeights w{file.tensor(ka).to(torch::kFloat64), file.tensor(kb).to(torch::kFloat64)};
      if (w.A.dim() != 2 || w.B.dim() != 2 || w.A.size(0) != w.B.size(1)) {
        throw std::invalid_argument(weights_path + ": '" + ka + "' " + std::to_string(w.A.dim()) + "-d and '" + kb +
                                    "' do not form a LoRA pair (A [r, in], B [out, r])");
      }
      adapter.weights[{layer, module}] = std::move(w);
      used += 2;
    }
  }
  if (used != file.entries().size()) {
    for (const auto& [key, entry] : file.entries()) {
      bool known = false;
      for (const auto& [k, w] : adapter.weights) {
        known =
            known || key == peft_tensor_key(k.first, k.second, 'A') || key == peft_tensor_key(k.first, k.second, 'B');
      }
      if (!known) throw std::invalid_argument(weights_path + ": tensor '" + key + "' is not a LoRA factor");
    }
  }
  if (adapter.weights.empty()) throw std::invalid_argument(weights_path + ": no LoRA tensors");
  return adapter;
}

double lora_delta_dot(const LoraWeights& a, double scale_a, const LoraWeights& b, double scale_b) {
  const at::Tensor gb = torch::matmul(a.B.to(torch::kFloat64).t(), b.B.to(torch::kFloat64));  // [r_a, r_b]
  const at::Tensor ga = torch::matmul(a.A.to(torch::kFloat64), b.A.to(torch::kFloat64).t());  // [r_a, r_b]
  return scale_a * scale_b * (gb * ga).sum().item<double>();
}

namespace {

std::string module_label(const LoraKey& key) {
  return lora_module_path(key.first, key.second);
}

}  // namespace

void lora_adapters_check_comparable(const LoraAdapter& a, const LoraAdapter& b) {
  const std::string pair = "adapters '" + a.name + "' and '" + b.name + "'";
  for (const auto& [key, wa] : a.weights) {
    auto it = b.weights.find(key);
    if (it == b.weights.end()) {
      throw std::invalid_argument(pair + " adapt different modules: only '" + a.name + "' adapts " + module_label(key));
    }
    const LoraWeights& wb = it->second;
    if (wa.A.size(1) != wb.A.size(1) || wa.B.size(0) != wb.B.size(0)) {
      throw std::invalid_argument(pair + " have different delta shapes at " + module_label(key) + ": [" +
                                  std::to_string(wa.B.size(0)) + ", " + std::to_string(wa.A.size(1)) + "] vs [" +
                                  std::to_string(wb.B.size(0)) + ", " + std::to_string(wb.A.size(1)) + "]");
    }
  }
  for (const auto& [key, wb] : b.weights) {
    if (!a.weights.count(key)) {
      throw std::invalid_argument(pair + " adapt different modules: only '" + b.name + "' adapts " + module_label(key));
    }
  }
}

double lora_delta_cosine(const LoraAdapter& a, const LoraAdapter& b) {
  lora_adapters_check_comparable(a, b);
  const double sa = lora_scale(a.config), sb = lora_scale(b.config);
  double total = 0;
  for (const auto& [key, wa] : a.weights) {
    const LoraWeights& wb = b.weights.at(key);
    const double na = std::sqrt(std::max(0.0, lora_delta_dot(wa, sa, wa, sa)));
    const double nb = std::sqrt(std::max(0.0, lora_delta_dot(wb, sb, wb, sb)));
    if (na == 0 || nb == 0) {
      throw std::invalid_argument("adapter '" + (na == 0 ? a.name : b.name) + "' has a zero delta at " +
                                  module_label(key) + " (untrained B?); its direction is undefined");
    }
    total += lora_delta_dot(wa, sa, wb, sb) / (na * nb);
  }
  return total / static_cast<double>(a.weights.size());
}

std::vector<double> lora_cosine_matrix(const std::vector<LoraAdapter>& adapters) {
  const size_t m = adapters.size();
  std::vector<double> cosine(m * m, 1.0);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = i + 1; j < m; ++j)
      cosine[i * m + j] = cosine[j * m + i] = lora_delta_cosine(adapters[i], adapters[j]);
  }
  // The diagonal is 1 by definition, but a zero delta must still be refused for M = 1.
  if (m == 1) lora_delta_cosine(adapters[0], adapters[0]);
  return cosine;
}

int64_t binomial(int64_t m, int64_t n) {
  if (n < 0 || n > m) return 0;
  n = std::min(n, m - n);
  int64_t c = 1;
  for (int64_t k = 1; k <= n; ++k) c = c * (m - n + k) / k;
  return c;
}

namespace {

struct SubsetWalk {
  const std::vector<double>& cosine;
  const std::vector<int64_t>& rank;
  int64_t m, n;
  std::vector<int64_t> current;
  SubsetTable& out;

  void walk(int64_t start, int64_t depth, double pair_sum, int64_t rank_sum) {
    if (depth == n) {
      out.members.insert(out.members.end(), current.begin(), current.end());
      out.mean_cosine.push_back(n > 1 ? pair_sum / (0.5 * static_cast<double>(n * (n - 1))) : 0.0);
      out.member_rank.push_back(rank_sum);
      return;
    }
    for (int64_t k = start; k <= m - (n - depth); ++k) {
      double added = 0;
      for (int64_t d = 0; d < depth; ++d) added += cosine[current[d] * m + k];
      current[depth] = k;
      walk(k + 1, depth + 1, pair_sum + added, rank_sum + rank[k]);
    }
  }
};

}  // namespace

SubsetTable subsets_score(const std::vector<double>& cosine, const std::vector<int64_t>& candidate_rank, int64_t n,
                          bool diversity) {
  const int64_t m = static_cast<int64_t>(candidate_rank.size());
  if (static_cast<int64_t>(cosine.size()) != m * m) {
    throw std::invalid_argument("subsets_score: cosine has " + std::to_string(cosine.size()) +
                                " entries, not M² = " + std::to_string(m * m));
  }
  if (n < 1 || n > m)
    throw std::invalid_argument("N = " + std::to_string(n) + " must be in 1..M = " + std::to_string(m));
  SubsetTable t;
  t.m = m;
  t.n = n;
  t.count = binomial(m, n);
  if (t.count > 20'000'000) {
    throw std::invalid_argument("C(" + std::to_string(m) + ", " + std::to_string(n) + ") = " + std::to_string(t.count) +
                                " subsets is too many to enumerate; lower M or N");
  }
  t.members.reserve(t.count * n);
  t.mean_cosine.reserve(t.count);
  t.member_rank.reserve(t.count);
  SubsetWalk walk{cosine, candidate_rank, m, n, std::vector<int64_t>(n), t};
  walk.walk(0, 0, 0.0, 0);

  std::vector<int64_t> order(t.count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t i, int64_t j) { return t.mean_cosine[i] < t.mean_cosine[j]; });
  t.rank_d.assign(t.count, 0);
  for (int64_t k = 0; k < t.count; ++k) t.rank_d[order[k]] = k + 1;
  t.omega.resize(t.count);
  t.score.resize(t.count);
  for (int64_t s = 0; s < t.count; ++s) {
    t.omega[s] = t.mean_cosine[s] == 0 ? std::numeric_limits<double>::infinity() : 1.0 / t.mean_cosine[s];
    t.score[s] = t.member_rank[s] + (diversity ? t.rank_d[s] : 0);
  }
  t.chosen = 0;
  for (int64_t s = 1; s < t.count; ++s) {
    const int64_t c = t.chosen;
    if (t.score[s] < t.score[c] || (diversity && t.score[s] == t.score[c] && t.rank_d[s] < t.rank_d[c])) t.chosen = s;
  }
  return t;
}

namespace {

struct ScoresTable {
  std::vector<std::string> adapters, paths;
  std::vector<double> acc, ppl_sum;
  std::vector<int64_t> skipped;
};

ScoresTable scores_read(const std::string& path) {
  if (!fs::exists(path)) throw std::invalid_argument(path + ": no such scores file");
  ArtifactReader r(path);
  for (const char* name : {"adapters", "adapter_paths", "acc", "ppl_sum", "skipped"}) {
    if (!r.has(name)) throw std::invalid_argument(path + ": missing dataset /" + std::string(name));
  }
  ScoresTable s;
  s.adapters = r.read_strings("adapters");
  s.paths = r.read_strings("adapter_paths");
  const auto acc = r.read_floats("acc");
  const auto ppl = r.read_floats("ppl_sum");
  s.acc.assign(acc.begin(), acc.end());
  s.ppl_sum.assign(ppl.begin(), ppl.end());
  s.skipped = r.read_int64("skipped");
  const size_t count = s.adapters.size();
  const std::pair<const char*, size_t> sizes[] = {{"adapter_paths", s.paths.size()},
                                                  {"acc", s.acc.size()},
                                                  {"ppl_sum", s.ppl_sum.size()},
                                                  {"skipped", s.skipped.size()}};
  for (const auto& [name, size] : sizes) {
    if (size != count) {
      throw std::invalid_argument(path + ": /" + std::string(name) + " has " + std::to_string(size) +
                                  " rows but /adapters has " + std::to_string(count));
    }
  }
  return s;
}

// Paths in scores.h5 are as `kmoe score` was given them; relative ones that do not exist
// from here are taken relative to the scores file's folder.
std::string adapter_path_resolve(const std::string& path, const std::string& scores_path) {
  if (fs::path(path).is_absolute() || fs::exists(path)) return path;
  const fs::path beside = fs::path(scores_path).parent_path() / path;
  return fs::exists(beside) ? beside.string() : path;
}

void table_print(const ScoresTable& s, const std::vector<int64_t>& candidates, const std::vector<int64_t>& r_p,
                 const std::vector<int64_t>& r_a, const std::vector<int64_t>& chosen, double omega) {
  std::set<int64_t> picked(chosen.begin(), chosen.end());
  size_t width = 7;
  for (int64_t c : candidates) width = std::max(width, s.adapters[c].size());
  std::printf("%-*s  %8s  %12s  %5s  %5s  %s\n", static_cast<int>(width), "adapter", "acc", "ppl_sum", "R_A", "R_P",
              "chosen");
  for (size_t k = 0; k < candidates.size(); ++k) {
    const int64_t a = candidates[k];
    std::printf("%-*s  %8.4f  %12.4f  %5lld  %5lld  %s\n", static_cast<int>(width), s.adapters[a].c_str(), s.acc[a],
                s.ppl_sum[a], static_cast<long long>(r_a[k]), static_cast<long long>(r_p[k]),
                picked.count(static_cast<int64_t>(k)) ? "*" : "");
  }
  std::printf("chosen subset Omega = %.6g (mean pairwise cosine %.6g)\n", omega, omega == 0 ? 0.0 : 1.0 / omega);
  std::fflush(stdout);
}

}  // namespace

// Over 80 lines: the candidate ranking, the stage spec and the collective write of every
// table read best as one sequence; the pieces (ranks, cosines, subsets) are functions above.
StageOutcome select_experts_stage(const MpiWorld& world, const SelectExpertsOptions& options) {
  if (options.scores.empty()) throw UsageError("kmoe select-experts: --scores is required");
  const std::string& scores_path = options.scores;
  const std::string& output = options.output;
  const int64_t m = options.m, n = options.n;
  const RankSignals signals = rank_signals_parse(options.signals);
  const bool diversity = !options.no_diversity;
  if (m < 1) throw UsageError("--m must be at least 1");
  if (n < 1 || n > m) throw UsageError("--n must be in 1..M (M = " + std::to_string(m) + "), not " + std::to_string(n));

  // Every rank reads the small table so that the names and shapes of the collective writes
  // agree without a broadcast.
  const ScoresTable s = scores_read(scores_path);
  std::vector<int64_t> eligible;  // rows of scores.h5 that are bank adapters and were scored
  for (size_t i = 0; i < s.adapters.size(); ++i) {
    if (i > 0 && !s.paths[i].empty() && s.skipped[i] == 0) eligible.push_back(static_cast<int64_t>(i));
  }
  if (m > static_cast<int64_t>(eligible.size())) {
    throw std::invalid_argument(scores_path + ": --m " + std::to_string(m) + " but only " +
                                std::to_string(eligible.size()) +
                                " adapters are candidates (base and skipped excluded)");
  }
  std::vector<std::string> names;
  std::vector<double> acc, ppl;
  for (int64_t i : eligible) {
    names.push_back(s.adapters[i]);
    acc.push_back(s.acc[i]);
    ppl.push_back(s.ppl_sum[i]);
  }
  const auto r_p_bank = rank_by_perplexity(ppl, acc, names);
  const auto r_a_bank = rank_by_accuracy(ppl, acc, names);
  const auto picked = candidates_pick(r_p_bank, r_a_bank, names, signals, m);
  std::vector<int64_t> candidates, r_p, r_a, r;  // candidates: rows of scores.h5
  std::vector<std::string> cand_names, cand_paths;
  for (int64_t k : picked) {
    candidates.push_back(eligible[k]);
    r_p.push_back(r_p_bank[k]);
    r_a.push_back(r_a_bank[k]);
    r.push_back(rank_combined(r_p_bank[k], r_a_bank[k], signals));
    cand_names.push_back(names[k]);
    cand_paths.push_back(adapter_path_resolve(s.paths[eligible[k]], scores_path));
  }
  std::vector<int64_t> all_r_p(s.adapters.size(), -1), all_r_a(s.adapters.size(), -1);
  for (size_t k = 0; k < eligible.size(); ++k) {
    all_r_p[eligible[k]] = r_p_bank[k];
    all_r_a[eligible[k]] = r_a_bank[k];
  }

  StageSpec spec;
  spec.stage = "select-experts";
  spec.output = output;
  spec.options = {{"m", m}, {"n", n}, {"signals", rank_signals_name(signals)}, {"diversity", diversity}};
  spec.inputs.push_back({"scores", scores_path});
  for (size_t k = 0; k < candidates.size(); ++k) spec.inputs.push_back({"adapter:" + cand_names[k], cand_paths[k]});
  spec.force = options.force;

  const StageOutcome outcome = stage_run(world, spec, [&](const Provenance& provenance) {
    std::vector<double> cosine;
    SubsetTable t;
    std::vector<int64_t> chosen(n);
    double seconds = 0;
    if (world.is_root()) {
      std::vector<LoraAdapter> adapters;
      for (size_t k = 0; k < candidates.size(); ++k)
        adapters.push_back(lora_adapter_read(cand_paths[k], cand_names[k]));
      cosine = lora_cosine_matrix(adapters);
      const auto t0 = std::chrono::steady_clock::now();
      t = subsets_score(cosine, r, n, diversity);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::copy(t.members.begin() + t.chosen * n, t.members.begin() + (t.chosen + 1) * n, chosen.begin());
    }
    mpi_check(MPI_Bcast(chosen.data(), static_cast<int>(n), MPI_INT64_T, 0, world.comm), "broadcast chosen subset");
    const int64_t count = binomial(m, n);
    log_info("scored ", count, " subsets of ", n, " among ", m, " candidates in ", seconds, " s");

    std::vector<std::string> chosen_names, chosen_paths;
    for (int64_t c : chosen) {
      chosen_names.push_back(cand_names[c]);
      chosen_paths.push_back(cand_paths[c]);
    }
    const auto floats = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
    ArtifactWriter w(world.comm, output, provenance);
    const bool root = world.is_root();
    w.write_strings("candidates", cand_names);
    w.write_strings("candidate_paths", cand_paths);
    w.write_int64("candidate_rows", {m}, candidates.data());
    w.write_int64("R_P", {m}, r_p.data());
    w.write_int64("R_A", {m}, r_a.data());
    w.write_int64("R", {m}, r.data());
    w.write_strings("adapters", s.adapters);
    w.write_int64("all_R_P", {static_cast<int64_t>(all_r_p.size())}, all_r_p.data());
    w.write_int64("all_R_A", {static_cast<int64_t>(all_r_a.size())}, all_r_a.data());
    const auto cos_f = floats(cosine), omega_f = floats(t.omega), mean_f = floats(t.mean_cosine);
    w.write_floats("cosine", {m, m}, root ? cos_f.data() : nullptr);
    w.write_int64("subsets", {count, n}, root ? t.members.data() : nullptr);
    w.write_floats("subset_omega", {count}, root ? omega_f.data() : nullptr);
    w.write_floats("subset_mean_cosine", {count}, root ? mean_f.data() : nullptr);
    w.write_int64("subset_R_D", {count}, root ? t.rank_d.data() : nullptr);
    w.write_int64("subset_score", {count}, root ? t.score.data() : nullptr);
    w.write_int64("chosen", {n}, chosen.data());
    w.write_strings("chosen_names", chosen_names);
    w.write_strings("chosen_paths", chosen_paths);
    w.set_attr("/", "m", m);
    w.set_attr("/", "n", n);
    w.set_attr("/", "signals", std::string(rank_signals_name(signals)));
    w.set_attr("/", "diversity", static_cast<int64_t>(diversity));
    w.commit();
    if (root) table_print(s, candidates, r_p, r_a, chosen, t.omega[t.chosen]);
  });
  log_info("select-experts: ", outcome.reason, " -> ", output);
  return outcome;
}

}  // namespace kmoe
