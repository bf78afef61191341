#include "selection/expert_selection.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <random>
#include <set>

#include "data/formats/peft_adapter.h"
#include "temp_dir.h"
#include "tests/unit/error_of.h"
#include "tiny_llama.h"

namespace kmoe {
namespace {

LoraConfig lora_config(int64_t r, std::vector<LinearModule> modules = {LinearModule::q_proj, LinearModule::v_proj}) {
  LoraConfig c;
  c.r = r;
  c.lora_alpha = 2.0 * static_cast<double>(r);
  c.target_modules = std::move(modules);
  return c;
}

TEST(ExpertSelection, PerplexityRankBreaksTiesByAccuracyThenName) {
  const std::vector<std::string> names = {"c", "a", "b", "d"};
  const std::vector<double> ppl = {5.0, 5.0, 5.0, 1.0};
  const std::vector<double> acc = {0.5, 0.2, 0.5, 0.0};
  // d has the lowest ppl; among the 5.0 ties b and c share the best accuracy, b wins by name.
  EXPECT_EQ(rank_by_perplexity(ppl, acc, names), (std::vector<int64_t>{3, 4, 2, 1}));
}

TEST(ExpertSelection, AccuracyRankBreaksTiesByPerplexityThenName) {
  const std::vector<std::string> names = {"c", "a", "b", "d"};
  const std::vector<double> ppl = {2.0, 3.0, 2.0, 1.0};
  const std::vector<double> acc = {0.9, 0.9, 0.9, 0.1};
  EXPECT_EQ(rank_by_accuracy(ppl, acc, names), (std::vector<int64_t>{2, 3, 1, 4}));
}

TEST(ExpertSelection, RanksDoNotDependOnInputOrder) {
  std::vector<std::string> names = {"x", "y", "z", "w"};
  std::vector<double> ppl = {1, 1, 1, 1}, acc = {0.5, 0.5, 0.5, 0.5};
  const auto r = rank_by_accuracy(ppl, acc, names);
  EXPECT_EQ(r, (std::vector<int64_t>{2, 3, 4, 1}));
  std::swap(names[0], names[3]);
  EXPECT_EQ(rank_by_accuracy(ppl, acc, names), (std::vector<int64_t>{1, 3, 4, 2}));
}

TEST(ExpertSelection, CandidatesFollowTheChosenSignals) {
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  const std::vector<int64_t> r_p = {1, 2, 3, 4};
  const std::vector<int64_t> r_a = {4, 3, 1, 2};
  EXPECT_EQ(candidates_pick(r_p, r_a, names, RankSignals::perplexity, 2), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(candidates_pick(r_p, r_a, names, RankSignals::accuracy, 2), (std::vector<int64_t>{2, 3}));
  // Sums 5, 5, 4, 6: c first, then a and b tie at 5 and b has the better R_A.
  EXPECT_EQ(candidates_pick(r_p, r_a, names, RankSignals::both, 3), (std::vector<int64_t>{2, 1, 0}));
  EXPECT_NE(error_of([&] { candidates_pick(r_p, r_a, names, RankSignals::both, 5); }).find("M = 5"), std::string::npos);
}

TEST(ExpertSelection, FrobeniusIdentityMatchesTheExplicitProduct) {
  torch::manual_seed(3);
  LoraWeights a{torch::randn({4, 40}, torch::kFloat64), torch::randn({30, 4}, torch::kFloat64)};
  LoraWeights b{torch::randn({6, 40}, torch::kFloat64), torch::randn({30, 6}, torch::kFloat64)};
  const double want = (0.5 * torch::matmul(a.B, a.A) * 3.0 * torch::matmul(b.B, b.A)).sum().item<double>();
  const double got = lora_delta_dot(a, 0.5, b, 3.0);
  EXPECT_NEAR(got, want, 1e-9 * std::abs(want));
  const double norm2 = torch::matmul(a.B, a.A).pow(2).sum().item<double>();
  EXPECT_NEAR(lora_delta_dot(a, 1.0, a, 1.0), norm2, 1e-9 * norm2);
}

TEST(ExpertSelection, CosineAveragesPerModuleCosinesOfScaledDeltas) {
  torch::manual_seed(4);
  const ModelConfig base = testing::tiny_llama_config();
  LoraAdapter a = lora_adapter_init("a", lora_config(4), base, 0.5);
  LoraAdapter b = lora_adapter_init("b", lora_config(2), base, 0.5);
  double want = 0;
  for (const auto& [key, wa] : a.weights) {
    const auto da = (lora_scale(a.config) * torch::matmul(wa.B, wa.A)).to(torch::kFloat64).flatten();
    const auto& wb = b.weights.at(key);
    const auto db = (lora_scale(b.config) * torch::matmul(wb.B, wb.A)).to(torch::kFloat64).flatten();
    want += (torch::dot(da, db) / (da.norm() * db.norm())).item<double>();
  }
  want /= static_cast<double>(a.weights.size());
  EXPECT_NEAR(lora_delta_cosine(a, b), want, 1e-6);
  EXPECT_NEAR(lora_delta_cosine(a, a), 1.0, 1e-9);
  // A flipped B flips every delta.
  LoraAdapter neg = a;
  neg.name = "neg";
  for (auto& [key, w] : neg.weights) w.B = -w.B;
  EXPECT_NEAR(lora_delta_cosine(a, neg), -1.0, 1e-9);
}

TEST(ExpertSelection, IncomparableAdaptersAreNamed) {
  const ModelConfig base = testing::tiny_llama_config();
  LoraAdapter qv = lora_adapter_init("qv", lora_config(4), base, 0.5);
  LoraAdapter qk = lora_adapter_init("qk", lora_config(4, {LinearModule::q_proj, LinearModule::k_proj}), base, 0.5);
  const std::string e = error_of([&] { lora_delta_cosine(qv, qk); });
  EXPECT_NE(e.find("'qv' and 'qk'"), std::string::npos) << e;
  EXPECT_NE(e.find("adapt different modules"), std::string::npos) << e;
  ModelConfig wide = base;
  wide.hidden_size = 32;
  wide.head_dim = 8;
  LoraAdapter other = lora_adapter_init("wide", lora_config(4), wide, 0.5);
  const std::string s = error_of([&] { lora_delta_cosine(qv, other); });
  EXPECT_NE(s.find("different delta shapes at model.layers.0.self_attn.q_proj"), std::string::npos) << s;
  LoraAdapter zero = lora_adapter_init("untrained", lora_config(4), base, 0.0);
  const std::string z = error_of([&] { lora_delta_cosine(qv, zero); });
  EXPECT_NE(z.find("'untrained' has a zero delta"), std::string::npos) << z;
}

TEST(ExpertSelection, AdapterFolderReadsWithoutABaseConfig) {
  testing::TempDir dir;
  torch::manual_seed(5);
  const ModelConfig base = testing::tiny_llama_config();
  LoraAdapter a = lora_adapter_init("a", lora_config(4), base, 0.5);
  peft_adapter_save(a, dir / "a");
  const LoraAdapter back = lora_adapter_read(dir / "a", "a");
  ASSERT_EQ(back.weights.size(), a.weights.size());
  EXPECT_DOUBLE_EQ(lora_scale(back.config), lora_scale(a.config));
  EXPECT_NEAR(lora_delta_cosine(a, back), 1.0, 1e-9);
  const std::string e = error_of([&] { lora_adapter_read(dir / "missing", "m"); });
  EXPECT_NE(e.find("missing/adapter_config.json"), std::string::npos) << e;
}

TEST(ExpertSelection, EnumeratesEverySubsetOnce) {
  const int64_t m = 7, n = 3;
  std::vector<double> cosine(m * m, 0.1);
  std::vector<int64_t> rank(m, 1);
  const SubsetTable t = subsets_score(cosine, rank, n, true);
  EXPECT_EQ(t.count, 35);
  ASSERT_EQ(static_cast<int64_t>(t.members.size()), 35 * n);
  std::set<std::vector<int64_t>> seen;
  for (int64_t s = 0; s < t.count; ++s) {
    std::vector<int64_t> row(t.members.begin() + s * n, t.members.begin() + (s + 1) * n);
    EXPECT_TRUE(std::is_sorted(row.begin(), row.end()));
    EXPECT_TRUE(seen.insert(row).second);
  }
  EXPECT_EQ(binomial(20, 10), 184756);
  EXPECT_EQ(binomial(8, 4), 70);
}

// The rule written out directly over bitmasks: mean pairwise cosine, R_D by mean ascending
// (ties: lexicographic subset order), score, smallest score with ties to smaller R_D.
std::vector<int64_t> brute_force_choice(const std::vector<double>& cosine, const std::vector<int64_t>& rank, int64_t n,
                                        bool diversity) {
  const int64_t m = static_cast<int64_t>(rank.size());
  struct Row {
    std::vector<int64_t> members;
    double mean;
    int64_t rank_sum;
    int64_t rd = 0;
  };
  std::vector<Row> rows;
  for (int64_t mask = 0; mask < (int64_t{1} << m); ++mask) {
    if (__builtin_popcountll(mask) != n) continue;
    Row r;
    for (int64_t i = 0; i < m; ++i)
      if (mask >> i & 1) r.members.push_back(i);
    double sum = 0;
    int64_t pairs = 0;
    for (size_t i = 0; i < r.members.size(); ++i) {
      for (size_t j = i + 1; j < r.members.size(); ++j, ++pairs) sum += cosine[r.members[i] * m + r.members[j]];
    }
    r.mean = pairs ? sum / static_cast<double>(pairs) : 0.0;
    r.rank_sum = 0;
    for (int64_t i : r.members) r.rank_sum += rank[i];
    rows.push_back(r);
  }
  for (auto& a : rows) {
    a.rd = 1;
    for (const auto& b : rows) {
      if (b.mean < a.mean - 1e-12 || (std::abs(b.mean - a.mean) <= 1e-12 && b.members < a.members)) ++a.rd;
    }
  }
  const Row* best = nullptr;
  for (const auto& r : rows) {
    const int64_t s = r.rank_sum + (diversity ? r.rd : 0);
    if (!best) {
      best = &r;
      continue;
    }
    const int64_t bs = best->rank_sum + (diversity ? best->rd : 0);
    const bool better =
        diversity ? (s < bs || (s == bs && r.rd < best->rd)) : (s < bs || (s == bs && r.members < best->members));
    if (better) best = &r;
  }
  return best->members;
}

TEST(ExpertSelection, ChoiceEqualsBruteForceOnRandomCases) {
  std::mt19937 gen(11);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t m = 3 + trial % 8;
    const int64_t n = 1 + trial % m;
    std::uniform_real_distribution<double> u(-0.3, 0.9);
    std::vector<double> cosine(m * m, 1.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = i + 1; j < m; ++j) cosine[i * m + j] = cosine[j * m + i] = u(gen);
    std::vector<int64_t> rank(m);
    for (int64_t i = 0; i < m; ++i) rank[i] = 2 + i + static_cast<int64_t>(gen() % 3);
    for (bool diversity : {true, false}) {
      const SubsetTable t = subsets_score(cosine, rank, n, diversity);
      const std::vector<int64_t> got(t.members.begin() + t.chosen * n, t.members.begin() + (t.chosen + 1) * n);
      EXPECT_EQ(got, brute_force_choice(cosine, rank, n, diversity)) << "m " << m << " n " << n << " div " << diversity;
    }
  }
}

TEST(ExpertSelection, DiversityTradesRankForSpread) {
  // Candidates 0, 1 are near-duplicates; 2 is a little worse by rank but different.
  const std::vector<double> cosine = {1, 0.99, 0.1, 0.99, 1, 0.1, 0.1, 0.1, 1};
  const std::vector<int64_t> rank = {2, 3, 4};
  auto chosen = [&](bool diversity) {
    const SubsetTable t = subsets_score(cosine, rank, 2, diversity);
    return std::vector<int64_t>(t.members.begin() + t.chosen * 2, t.members.begin() + t.chosen * 2 + 2);
  };
  EXPECT_EQ(chosen(false), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(chosen(true), (std::vector<int64_t>{0, 2}));
  const SubsetTable t = subsets_score(cosine, rank, 2, true);
  EXPECT_NEAR(t.omega[t.chosen], 10.0, 1e-9);
  EXPECT_EQ(t.rank_d[0], 3);  // {0, 1} is the least diverse of three
}

TEST(ExpertSelection, BadShapesAreRefused) {
  EXPECT_NE(error_of([] { subsets_score({1, 0, 0}, {1, 2}, 1, true); }).find("M² = 4"), std::string::npos);
  EXPECT_NE(error_of([] { subsets_score({1, 0, 0, 1}, {1, 2}, 3, true); }).find("N = 3"), std::string::npos);
  EXPECT_NE(error_of([] { rank_by_accuracy({1.0}, {1.0, 2.0}, {"a"}); }).find("differ in length"), std::string::npos);
  EXPECT_THROW(rank_signals_parse("neither"), UsageError);
}

TEST(ExpertSelection, TwentyChooseTenTiming) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<double> u(-0.2, 0.8);
  const int64_t m = 20, n = 10;
  std::vector<double> cosine(m * m, 1.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = i + 1; j < m; ++j) cosine[i * m + j] = cosine[j * m + i] = u(gen);
  std::vector<int64_t> rank(m);
  for (int64_t i = 0; i < m; ++i) rank[i] = 2 * (i + 1);
  const auto t0 = std::chrono::steady_clock::now();
  const SubsetTable t = subsets_score(cosine, rank, n, true);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(t.count, 184756);
  std::cout << "[timing] M=20 N=10: " << t.count << " subsets scored in " << s << " s\n";
}

}  // namespace
}  // namespace kmoe
