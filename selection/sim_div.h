// K-shot guided Sim-Div data selection (METHOD.md §1.2): score every open row by its cosine
// similarity to the K-shot set, walk the rows from most to least similar and drop a row
// whose cosine to an already-kept row exceeds tau, until C are kept. Rows are streamed in
// blocks through a reader, so memory is bounded by `memory_bytes`, not by the corpus: the
// budget pays first for what grows with the input (4 bytes of score per row, the C kept
// vectors), then half of the rest for a streamed block (the reader's buffer, the float32
// block and its normalised copy) and half for a candidate window. The ranked walk takes
// windows of the best not-yet-visited rows and fetches their vectors with one more
// streaming pass per window.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

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

// The smallest `memory_bytes` sim_div_select accepts for these sizes: the scores, the kept
// vectors, and room for a block and a window of 4 rows each.
int64_t sim_div_min_memory(int64_t n_rows, int64_t dim, int64_t c);

// kshot: [k, dim] row-major. Throws for dim mismatch, k == 0, c < 1, tau outside [-1, 1] or
// memory_bytes below sim_div_min_memory.
SimDivResult sim_div_select(const RowBlockReader& rows, int64_t n_rows, int64_t dim, const std::vector<float>& kshot,
                            const SimDivOptions& options);

// `kmoe select-data`: embeddings.h5 -> DIR/data_selection.h5 and DIR/selected.jsonl (the
// selected records in rank order, then the K-shot examples unless no_kshot).
struct SelectDataOptions {
  std::string embeddings;            // embeddings.h5 from kmoe embed (required)
  std::vector<std::string> corpus;   // the open-data files given to kmoe embed, in the same order (required)
  std::string kshot;                 // the K-shot file given to kmoe embed (required)
  int64_t c = 1000;                  // open rows to keep
  double tau = 0.9;                  // drop a row whose cosine to a kept row exceeds this
  std::string score = "max";         // max: max cosine to any K-shot row; mean: cosine to the K-shot mean
  int64_t memory_mb = 512;           // memory for streamed blocks and candidates
  std::string output_dir;            // writes DIR/selected.jsonl and DIR/data_selection.h5 (required)
  bool no_kshot = false;             // do not append the K-shot examples to selected.jsonl
  std::string expect_encoder;        // refuse embeddings made by another encoder kind ("": any)
  std::string expect_encoder_model;  // refuse embeddings made by another encoder model ("": any)
  bool force = false;                // run even if data_selection.h5 is complete
};
StageOutcome select_data_stage(const MpiWorld& world, const SelectDataOptions& options);

}  // namespace kmoe
