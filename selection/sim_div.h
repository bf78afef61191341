// K-shot guided Sim-Div data selection (METHOD.md §1.2): score every open row by its cosine
// similarity to the K-shot set, walk the rows from most to least similar and drop a row
// whose cosine to an already-kept row exceeds tau, until C are kept. Rows are streamed in
// blocks through a reader, so memory is bounded by `memory_bytes` (plus 4 bytes of score
// per row), not by the corpus: the ranked walk takes candidate windows of the best
// not-yet-visited rows and fetches their vectors with one more streaming pass per window.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "launcher/cli.h"

namespace kmoe {

enum class SimScore { max, mean };  // max cosine to any K-shot row | cosine to the normalised K-shot mean

struct SimDivOptions {
  int64_t c = 1000;  // rows to keep
  double tau = 0.9;  // dedup threshold on cosine
  SimScore score = SimScore::max;
  int64_t memory_bytes = 512ll << 20;  // for streamed blocks and candidate windows
};

struct SimDivResult {
  std::vector<float> scores;        // [rows]
  std::vector<int64_t> selected;    // kept rows, most similar first
  std::vector<int64_t> dropped;     // rows dropped by dedup, in walk order
  std::vector<int64_t> dropped_by;  // the kept row each was too close to
};

// rows(begin, count) -> [count, dim] float32 row-major (need not be normalised).
using RowBlockReader = std::function<std::vector<float>(int64_t begin, int64_t count)>;

// kshot: [k, dim] row-major. Throws for dim mismatch, k == 0, c < 1 or tau outside [-1, 1].
SimDivResult sim_div_select(const RowBlockReader& rows, int64_t n_rows, int64_t dim, const std::vector<float>& kshot,
                            const SimDivOptions& options);

// `kmoe select-data`.
Subcommand select_data_subcommand();

}  // namespace kmoe
