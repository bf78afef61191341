// Sim-Div on hand-made vectors: max vs mean scores, dedup of planted near-duplicates with
// refill up to C, and the memory-bounded streaming walk against a plain in-memory reference.
#include "selection/sim_div.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "selection/embedding.h"

namespace kmoe {
namespace {

struct Matrix {
  int64_t rows = 0, dim = 0;
  std::vector<float> data;
  RowBlockReader reader() const {
    return [this](int64_t b, int64_t n) {
      return std::vector<float>(data.begin() + b * dim, data.begin() + (b + n) * dim);
    };
  }
};

Matrix matrix_of(const at::Tensor& t) {  // t [rows, dim]
  const at::Tensor c = t.to(torch::kFloat32).contiguous();
  Matrix m{c.size(0), c.size(1), {}};
  m.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return m;
}

std::vector<float> flat(const at::Tensor& t) {
  const at::Tensor c = t.to(torch::kFloat32).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

// The definition, one row at a time, everything in memory. Rows are ranked by `rank_scores`
// (the streamed scores, checked against r.scores separately) so float rounding cannot
// reorder near-ties.
SimDivResult reference_select(const at::Tensor& x, const at::Tensor& k, const SimDivOptions& o,
                              const std::vector<float>& rank_scores) {
  const at::Tensor xn = x / x.norm(2, 1, true);
  at::Tensor kn = k / k.norm(2, 1, true);
  if (o.score == SimScore::mean) {
    kn = kn.mean(0, true);
    kn = kn / kn.norm(2, 1, true);
  }
  const at::Tensor s = std::get<0>(torch::matmul(xn, kn.t()).max(1));
  SimDivResult r;
  r.scores = flat(s);
  std::vector<int64_t> order(x.size(0));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rank_scores[a] > rank_scores[b]; });
  for (const int64_t row : order) {
    if (static_cast<int64_t>(r.selected.size()) == o.c) break;
    float best = -2;
    int64_t by = -1;
    for (const int64_t kept : r.selected) {
      const float c = torch::dot(xn[row], xn[kept]).item<float>();
      if (c > best) best = c, by = kept;
    }
    if (by >= 0 && best > o.tau) {
      r.dropped.push_back(row);
      r.dropped_by.push_back(by);
    } else {
      r.selected.push_back(row);
    }
  }
  return r;
}

TEST(SimDiv, MaxScoreIsBestKshotCosineAndMeanUsesTheKshotMean) {
  // Two K-shot directions e0 and e1; row 0 = e0 (max 1, mean cos 0.707); row 1 = (e0+e1)
  // (max 0.707, mean 1); row 2 = e2 (0 either way).
  const Matrix x = matrix_of(torch::tensor({1.f, 0.f, 0.f, 2.f, 2.f, 0.f, 0.f, 0.f, 3.f}).view({3, 3}));
  const std::vector<float> k = {1, 0, 0, 0, 1, 0};
  SimDivOptions o;
  o.c = 3;
  o.tau = 1.0;
  const auto rmax = sim_div_select(x.reader(), 3, 3, k, o);
  EXPECT_NEAR(rmax.scores[0], 1.0, 1e-6);
  EXPECT_NEAR(rmax.scores[1], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(rmax.scores[2], 0.0, 1e-6);
  EXPECT_EQ(rmax.selected, (std::vector<int64_t>{0, 1, 2}));
  o.score = SimScore::mean;
  const auto rmean = sim_div_select(x.reader(), 3, 3, k, o);
  EXPECT_NEAR(rmean.scores[0], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(rmean.scores[1], 1.0, 1e-6);
  EXPECT_EQ(rmean.selected, (std::vector<int64_t>{1, 0, 2}));
}

TEST(SimDiv, DedupDropsPlantedNearDuplicatesAndRefillsUpToC) {
  torch::manual_seed(1);
  const int64_t dim = 32, distinct = 20;
  const at::Tensor anchor = torch::randn({1, dim});
  // distinct rows near the anchor but far from each other, then a near-copy of each.
  const at::Tensor base = anchor + 0.9 * torch::randn({distinct, dim});
  const at::Tensor copies = base + 0.01 * torch::randn({distinct, dim});
  const Matrix x = matrix_of(torch::cat({base, copies}, 0));
  SimDivOptions o;
  o.c = distinct;
  o.tau = 0.95;
  const auto r = sim_div_select(x.reader(), 2 * distinct, dim, flat(anchor), o);
  ASSERT_EQ(static_cast<int64_t>(r.selected.size()), distinct);  // refilled up to C
  std::vector<int> pair_kept(distinct, 0);
  for (const int64_t row : r.selected) ++pair_kept[row % distinct];
  for (int64_t p = 0; p < distinct; ++p) EXPECT_EQ(pair_kept[p], 1) << "pair " << p;  // one of each pair
  ASSERT_EQ(r.dropped.size(), r.dropped_by.size());
  // The walk stops at C kept, so copies ranked after the last kept row are never visited.
  EXPECT_GT(r.dropped.size(), 0u);
  EXPECT_LE(static_cast<int64_t>(r.dropped.size()), distinct);
  for (size_t i = 0; i < r.dropped.size(); ++i) EXPECT_EQ(r.dropped[i] % distinct, r.dropped_by[i] % distinct);
  // Without dedup the copies crowd out half of the distinct samples.
  o.tau = 1.0;
  const auto plain = sim_div_select(x.reader(), 2 * distinct, dim, flat(anchor), o);
  std::vector<int> seen(distinct, 0);
  for (const int64_t row : plain.selected) ++seen[row % distinct];
  EXPECT_LT(std::count_if(seen.begin(), seen.end(), [](int s) { return s > 0; }), distinct);
}

TEST(SimDiv, ExhaustedListKeepsFewerThanC) {
  const Matrix x = matrix_of(torch::tensor({1.f, 0.f, 1.f, 0.001f}).view({2, 2}));
  SimDivOptions o;
  o.c = 5;
  o.tau = 0.9;
  const auto r = sim_div_select(x.reader(), 2, 2, {1, 0}, o);
  EXPECT_EQ(r.selected.size(), 1u);
  EXPECT_EQ(r.dropped, (std::vector<int64_t>{1}));
  EXPECT_EQ(r.dropped_by, (std::vector<int64_t>{0}));
}

TEST(SimDiv, StreamingWithTinyMemoryEqualsInMemoryReference) {
  torch::manual_seed(7);
  const int64_t n = 3000, dim = 16;
  // Clustered rows so that dedup drops many.
  const at::Tensor centers = torch::randn({40, dim});
  const at::Tensor x = centers.index_select(0, torch::randint(40, {n}, torch::kInt64)) + 0.3 * torch::randn({n, dim});
  const at::Tensor k = torch::randn({5, dim});
  const Matrix m = matrix_of(x);
  for (const SimScore score : {SimScore::max, SimScore::mean}) {
    SimDivOptions o;
    o.c = 120;
    o.tau = 0.9;
    o.score = score;
    // 6 KiB beyond the scores and kept vectors: blocks of 16 rows, windows of 27: many passes
    o.memory_bytes = n * 4 + o.c * dim * 4 + 6144;
    int64_t reads = 0;
    const RowBlockReader counted = [&](int64_t b, int64_t c) {
      EXPECT_LE(3 * c * dim * 4, 6144 / 2);  // a block's three copies fit half of what is left
      ++reads;
      return m.reader()(b, c);
    };
    const auto got = sim_div_select(counted, n, dim, flat(k), o);
    const auto want = reference_select(x, k, o, got.scores);
    EXPECT_GT(reads, n / 16);
    ASSERT_EQ(got.scores.size(), want.scores.size());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got.scores[i], want.scores[i], 1e-5);
    EXPECT_EQ(got.selected, want.selected);
    EXPECT_EQ(got.dropped, want.dropped);
    EXPECT_EQ(got.dropped_by, want.dropped_by);
    EXPECT_GT(got.dropped.size(), 0u);
  }
}

TEST(SimDiv, BadArgumentsAreRejected) {
  const Matrix x = matrix_of(torch::ones({2, 2}));
  SimDivOptions o;
  EXPECT_THROW(sim_div_select(x.reader(), 2, 2, {}, o), std::invalid_argument);
  EXPECT_THROW(sim_div_select(x.reader(), 2, 2, {1, 0, 1}, o), std::invalid_argument);
  o.c = 0;
  EXPECT_THROW(sim_div_select(x.reader(), 2, 2, {1, 0}, o), std::invalid_argument);
}

TEST(SimDiv, MemoryBudgetCountsScoresAndKeptRows) {
  const int64_t n = 1000, dim = 8;
  const Matrix x = matrix_of(torch::randn({n, dim}));
  SimDivOptions o;
  o.c = 50;
  const int64_t need = sim_div_min_memory(n, dim, o.c);
  EXPECT_EQ(need, n * 4 + o.c * dim * 4 + 4 * 3 * dim * 4 + 4 * (dim * 4 + 48));
  EXPECT_EQ(sim_div_min_memory(n, dim, 5000), sim_div_min_memory(n, dim, n));  // C beyond the rows counts the rows
  o.memory_bytes = need - 1;
  EXPECT_THROW(sim_div_select(x.reader(), n, dim, {1, 0, 0, 0, 0, 0, 0, 0}, o), std::invalid_argument);
  o.memory_bytes = need;
  EXPECT_EQ(sim_div_select(x.reader(), n, dim, {1, 0, 0, 0, 0, 0, 0, 0}, o).selected.size(), 50u);
}

TEST(EmbedBatches, SortsByLengthAndCutsIntoBatches) {
  const auto b = embed_batches({5, 1, 9, 1, 3}, 2);
  EXPECT_EQ(b, (std::vector<std::vector<int64_t>>{{1, 3}, {4, 0}, {2}}));
  EXPECT_THROW(embed_batches({1}, 0), std::invalid_argument);
}

}  // namespace
}  // namespace kmoe
