// See sim_div.h. The walk is chunked: a chunk of candidates is compared with all kept rows
// in one matmul, then row by row with the rows kept earlier in the same chunk, so the result
// equals the one-row-at-a-time definition. Ties in score are broken by row index.
#include "selection/sim_div.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <queue>

#include "data/store/artifact.h"
#include "data/store/content_hash.h"
#include "data/store/folder_commit.h"
#include "data/text/jsonl.h"
#include "data/text/open_corpus.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

namespace {

// What the memory budget counts per row: a score for every row; per streamed row the
// reader's buffer, the float32 block and its normalised copy (3 row sizes: counted high for
// a float16 file, whose buffer is half a row); per window row its vector plus its ranking
// entries (the heap, the window and the row-to-slot map).
constexpr int64_t kScoreBytes = sizeof(float);
constexpr int64_t kStreamCopies = 3;
constexpr int64_t kRankedBytes = 48;

at::Tensor rows_normalized(const float* data, int64_t n, int64_t dim) {  // -> [n, dim]
  const at::Tensor x = torch::from_blob(const_cast<float*>(data), {n, dim}, torch::kFloat32);
  return x / x.norm(2, 1, true).clamp_min(1e-12);
}

struct Ranked {
  float score;
  int64_t row;
};
// a ranks before b: higher score, then lower row index.
bool ranks_before(const Ranked& a, const Ranked& b) {
  return a.score != b.score ? a.score > b.score : a.row < b.row;
}

}  // namespace

int64_t sim_div_min_memory(int64_t n_rows, int64_t dim, int64_t c) {
  const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(float));
  return n_rows * kScoreBytes + std::min(c, n_rows) * row_bytes + 4 * (kStreamCopies * row_bytes) +
         4 * (row_bytes + kRankedBytes);
}

SimDivResult sim_div_select(const RowBlockReader& rows, int64_t n_rows, int64_t dim, const std::vector<float>& kshot,
                            const SimDivOptions& options) {
  if (dim < 1) throw std::invalid_argument("sim_div_select: dim must be >= 1");
  if (kshot.empty() || kshot.size() % dim != 0) {
    throw std::invalid_argument("sim_div_select: K-shot embeddings (" + std::to_string(kshot.size()) +
                                " floats) are not a non-empty [k, " + std::to_string(dim) + "] matrix");
  }
  if (options.c < 1) throw std::invalid_argument("sim_div_select: C must be >= 1");
  if (!(options.tau >= -1.0 && options.tau <= 1.0))
    throw std::invalid_argument("sim_div_select: tau must be in [-1, 1]");
  torch::NoGradGuard no_grad;
  const int64_t k = static_cast<int64_t>(kshot.size()) / dim;
  at::Tensor anchors = rows_normalized(kshot.data(), k, dim).clone();  // [k, dim]
  if (options.score == SimScore::mean)
    anchors = rows_normalized(anchors.mean(0).contiguous().data_ptr<float>(), 1, dim).clone();
  const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(float));
  const int64_t c_rows = std::min(options.c, n_rows);
  if (options.memory_bytes < sim_div_min_memory(n_rows, dim, c_rows)) {
    throw std::invalid_argument("sim_div_select: a memory budget of " + std::to_string(options.memory_bytes) +
                                " bytes is below the " + std::to_string(sim_div_min_memory(n_rows, dim, c_rows)) +
                                " that " + std::to_string(n_rows) + " rows and C = " + std::to_string(c_rows) + " need");
  }
  const int64_t rest = options.memory_bytes - n_rows * kScoreBytes - c_rows * row_bytes;
  const int64_t block_rows = std::max<int64_t>(1, rest / 2 / (kStreamCopies * row_bytes));
  const int64_t window_rows = std::max<int64_t>(1, rest / 2 / (row_bytes + kRankedBytes));

  SimDivResult result;
  result.scores.resize(n_rows);
  for (int64_t begin = 0; begin < n_rows; begin += block_rows) {
    const int64_t count = std::min(block_rows, n_rows - begin);
    const std::vector<float> block = rows(begin, count);
    if (static_cast<int64_t>(block.size()) != count * dim) throw std::runtime_error("sim_div_select: short row block");
    const at::Tensor s = std::get<0>(torch::matmul(rows_normalized(block.data(), count, dim), anchors.t()).max(1));
    std::copy_n(s.contiguous().data_ptr<float>(), count, result.scores.begin() + begin);
  }

  const int64_t c = std::min(options.c, n_rows);
  at::Tensor kept = torch::empty({std::max<int64_t>(c, 1), dim});  // [c, dim] normalised kept vectors
  int64_t n_kept = 0;
  bool has_last = false;
  Ranked last{0, 0};
  while (n_kept < c) {
    // The next window: the best window_rows rows ranked after `last`.
    auto worse_on_top = [](const Ranked& a, const Ranked& b) { return ranks_before(a, b); };
    std::priority_queue<Ranked, std::vector<Ranked>, decltype(worse_on_top)> heap(worse_on_top);
    for (int64_t r = 0; r < n_rows; ++r) {
      const Ranked x{result.scores[r], r};
      if (has_last && !ranks_before(last, x)) continue;
      if (static_cast<int64_t>(heap.size()) < window_rows) {
        heap.push(x);
      } else if (ranks_before(x, heap.top())) {
        heap.pop();
        heap.push(x);
      }
    }
    if (heap.empty()) break;
    std::vector<Ranked> window;
    while (!heap.empty()) {
      window.push_back(heap.top());
      heap.pop();
    }
    std::reverse(window.begin(), window.end());  // best first
    last = window.back();
    has_last = true;

    // Fetch the window's vectors with one streaming pass over the blocks that hold them.
    const int64_t w = static_cast<int64_t>(window.size());
    std::vector<std::pair<int64_t, int64_t>> by_row(w);  // (row, slot)
    for (int64_t i = 0; i < w; ++i) by_row[i] = {window[i].row, i};
    std::sort(by_row.begin(), by_row.end());
    at::Tensor cand = torch::empty({w, dim});  // [w, dim] normalised, in rank order
    for (size_t i = 0; i < by_row.size();) {
      const int64_t begin = by_row[i].first / block_rows * block_rows;
      const int64_t count = std::min(block_rows, n_rows - begin);
      const std::vector<float> block = rows(begin, count);
      const at::Tensor x = rows_normalized(block.data(), count, dim);
      for (; i < by_row.size() && by_row[i].first < begin + count; ++i)
        cand[by_row[i].second] = x[by_row[i].first - begin];
    }

    constexpr int64_t kChunk = 256;
    for (int64_t c0 = 0; c0 < w && n_kept < c; c0 += kChunk) {
      const int64_t cn = std::min(kChunk, w - c0);
      const at::Tensor chunk = cand.narrow(0, c0, cn);  // [cn, dim]
      const int64_t kept_before = n_kept;
      at::Tensor prior_max, prior_arg;
      if (kept_before > 0)
        std::tie(prior_max, prior_arg) = torch::matmul(chunk, kept.narrow(0, 0, kept_before).t()).max(1);
      for (int64_t j = 0; j < cn && n_kept < c; ++j) {
        float best = -2.0f;
        int64_t best_slot = -1;
        if (kept_before > 0) {
          best = prior_max[j].item<float>();
          best_slot = prior_arg[j].item<int64_t>();
        }
        if (n_kept > kept_before) {
          const at::Tensor s = torch::mv(kept.narrow(0, kept_before, n_kept - kept_before), chunk[j]);
          const auto [m, a] = s.max(0);
          if (m.item<float>() > best) {
            best = m.item<float>();
            best_slot = kept_before + a.item<int64_t>();
          }
        }
        const int64_t row = window[c0 + j].row;
        if (best_slot >= 0 && best > options.tau) {
          result.dropped.push_back(row);
          result.dropped_by.push_back(result.selected[best_slot]);
        } else {
          kept[n_kept++] = chunk[j];
          result.selected.push_back(row);
        }
      }
    }
  }
  return result;
}

namespace {

std::vector<std::string> embeddings_file_hashes(const ArtifactReader& r) {
  return r.has("source_files_sha256") ? r.read_strings("source_files_sha256") : std::vector<std::string>{};
}

// Throws naming the embeddings file when it was not made from these inputs by this encoder.
void embeddings_check(const ArtifactReader& r, const std::vector<std::string>& corpus, const std::string& kshot,
                      const SelectDataOptions& options) {
  const std::string& path = r.path();
  if (!r.has("embeddings") || !r.has("kshot_embeddings") || !r.has_attr("/", "encoder_kind")) {
    throw std::runtime_error(path + ": not an embeddings file from kmoe embed");
  }
  if (!options.expect_encoder.empty() && r.attr_string("/", "encoder_kind") != options.expect_encoder) {
    throw std::runtime_error(path + ": made by encoder '" + r.attr_string("/", "encoder_kind") + "', not '" +
                             options.expect_encoder + "' (--expect-encoder)");
  }
  if (!options.expect_encoder_model.empty()) {
    const std::string& model = options.expect_encoder_model;
    if (r.attr_string("/", "encoder_model_sha256") != content_hash(model)) {
      throw std::runtime_error(path + ": made by encoder model " + r.attr_string("/", "encoder_model") + ", not " +
                               model + " (--expect-encoder-model; contents differ)");
    }
  }
  const auto hashes = embeddings_file_hashes(r);
  if (hashes.size() != corpus.size()) {
    throw std::runtime_error(path + ": embeds " + std::to_string(hashes.size()) + " corpus files, --corpus names " +
                             std::to_string(corpus.size()));
  }
  for (size_t f = 0; f < corpus.size(); ++f) {
    if (content_hash(corpus[f]) != hashes[f]) {
      throw std::runtime_error(path + ": corpus file " + std::to_string(f) + " (" + corpus[f] +
                               ") differs from the one embedded (sha256 mismatch)");
    }
  }
  if (content_hash(kshot) != r.attr_string("/", "kshot_sha256")) {
    throw std::runtime_error(path + ": K-shot file " + kshot + " differs from the one embedded (sha256 mismatch)");
  }
}

}  // namespace

// Over 80 lines: the selection, selected.jsonl (written beside the artifact and renamed
// after it) and the collective write are one sequence on shared state.
StageOutcome select_data_stage(const MpiWorld& world, const SelectDataOptions& options) {
  if (options.embeddings.empty() || options.corpus.empty() || options.kshot.empty() || options.output_dir.empty()) {
    throw UsageError("kmoe select-data: --embeddings, --corpus, --kshot and --output-dir are required");
  }
  const std::string& emb_path = options.embeddings;
  const std::vector<std::string>& corpus = options.corpus;
  const std::string& kshot = options.kshot;
  const std::string& out_dir = options.output_dir;
  SimDivOptions opt;
  opt.c = options.c;
  opt.tau = options.tau;
  const std::string& score = options.score;
  if (score != "max" && score != "mean")
    throw UsageError("kmoe select-data: --score must be max or mean, not '" + score + "'");
  opt.score = score == "max" ? SimScore::max : SimScore::mean;
  if (options.memory_mb < 1) throw UsageError("kmoe select-data: --memory-mb must be >= 1");
  opt.memory_bytes = options.memory_mb << 20;
  if (opt.c < 1) throw UsageError("kmoe select-data: --c must be >= 1");
  if (!(opt.tau >= -1 && opt.tau <= 1)) throw UsageError("kmoe select-data: --tau must be in [-1, 1]");
  const bool with_kshot = !options.no_kshot;

  StageSpec spec;
  spec.stage = "select-data";
  spec.output = out_dir + "/data_selection.h5";
  spec.extra_files = {out_dir + "/selected.jsonl"};
  spec.options = {{"c", opt.c}, {"tau", opt.tau}, {"score", score}, {"kshot_appended", with_kshot}};
  spec.inputs.push_back({"embeddings", emb_path});
  for (size_t f = 0; f < corpus.size(); ++f) spec.inputs.push_back({"corpus" + std::to_string(f), corpus[f]});
  spec.inputs.push_back({"kshot", kshot});
  spec.force = options.force;
  if (world.is_root()) std::filesystem::create_directories(out_dir);
  const StageOutcome outcome = stage_run(world, spec, [&](const Provenance& prov) {
    SimDivResult res;
    std::vector<std::string> source_files;
    int64_t sizes[4] = {0, 0, 0, 0};
    if (world.is_root()) {
      ArtifactReader r(emb_path);
      embeddings_check(r, corpus, kshot, options);
      const auto shape = r.shape("embeddings");
      if (shape.size() == 2 && opt.memory_bytes < sim_div_min_memory(shape[0], shape[1], opt.c)) {
        const int64_t mib = (sim_div_min_memory(shape[0], shape[1], opt.c) + (1 << 20) - 1) >> 20;
        throw UsageError("kmoe select-data: --memory-mb " + std::to_string(options.memory_mb) + " is too small for the " +
                         std::to_string(shape[0]) + " rows of " + emb_path + " with --c " + std::to_string(opt.c) +
                         " (a score per row and the kept vectors alone): give --memory-mb " + std::to_string(mib) + " or more");
      }
      const auto kshot_vecs = r.read_floats("kshot_embeddings");
      res = sim_div_select([&](int64_t b, int64_t n) { return r.read_rows("embeddings", b, n); }, shape[0], shape[1],
                           kshot_vecs, opt);
      // Of the per-row file and line indexes only the selected rows are read (10M rows would be 160 MB).
      const auto file_of = r.read_int64_at("source_file", res.selected);
      const auto line_of = r.read_int64_at("line", res.selected);
      // selected.jsonl: the selected records in rank order, then the K-shot examples.
      std::vector<std::vector<std::pair<int64_t, int64_t>>> wanted(corpus.size());  // per file (line, rank)
      for (size_t i = 0; i < res.selected.size(); ++i) {
        wanted.at(file_of[i]).push_back({line_of[i], static_cast<int64_t>(i)});
      }
      std::vector<std::string> out_lines(res.selected.size());
      for (size_t f = 0; f < corpus.size(); ++f) {
        std::sort(wanted[f].begin(), wanted[f].end());
        std::vector<int64_t> lines;
        for (const auto& [line, rank] : wanted[f]) lines.push_back(line);
        const auto raw = jsonl_lines_read(corpus[f], lines);
        for (size_t j = 0; j < raw.size(); ++j) {
          const int64_t rank = wanted[f][j].second;
          nlohmann::json rec = nlohmann::json::parse(raw[j]);
          rec["_source_file"] = corpus[f];
          rec["_line"] = wanted[f][j].first;
          rec["_score"] = res.scores[res.selected[rank]];
          out_lines[rank] = rec.dump();
        }
      }
      // Written as .partial and renamed only after data_selection.h5 is committed: a
      // selected.jsonl under its final name is always complete and has its artifact.
      std::ofstream out(out_dir + "/selected.jsonl.partial");
      for (const auto& l : out_lines) out << l << "\n";
      if (with_kshot) {
        jsonl_read(kshot, "the K-shot file", [&](int64_t n, const nlohmann::json& record) {
          nlohmann::json rec = record;
          rec["_kshot"] = true;
          rec["_source_file"] = kshot;
          rec["_line"] = n;
          out << rec.dump() << "\n";
        });
      }
      out.close();
      if (!out) throw std::runtime_error(out_dir + "/selected.jsonl.partial: write failed (disk full?)");
      path_sync(out_dir + "/selected.jsonl.partial");
      sizes[0] = static_cast<int64_t>(res.scores.size());
      sizes[1] = static_cast<int64_t>(res.selected.size());
      sizes[2] = static_cast<int64_t>(res.dropped.size());
      log_info("select-data: kept ", sizes[1], " of ", sizes[0], " rows (", sizes[2], " dropped as near-duplicates)");
      if (sizes[1] < std::min<int64_t>(opt.c, sizes[0])) {
        log_warn("select-data: kept only ", sizes[1], " rows where --c ", opt.c, " asked for ",
                 std::min<int64_t>(opt.c, sizes[0]), ": every other row has a cosine above --tau ", opt.tau,
                 " to a kept row. Raise --tau, or embed with a sentence encoder (encoder '",
                 r.attr_string("/", "encoder_kind"),
                 "' made these; a decoder's mean-pooled states are nearly parallel, cosines 0.9 and above)");
      }
    }
    mpi_check(MPI_Bcast(sizes, 4, MPI_INT64_T, 0, world.comm), "select-data sizes");
    ArtifactWriter w(world.comm, spec.output, prov);
    w.write_floats("scores", {sizes[0]}, res.scores.data());
    w.write_int64("selected", {sizes[1]}, res.selected.data());
    w.write_int64("dropped", {sizes[2]}, res.dropped.data());
    w.write_int64("dropped_by", {sizes[2]}, res.dropped_by.data());
    w.set_attr("/", "c", opt.c);
    w.set_attr("/", "tau", opt.tau);
    w.set_attr("/", "score", score);
    w.set_attr("/", "embeddings", emb_path);
    w.commit();
    int renamed = 1;
    if (world.is_root()) {
      std::error_code ec;
      std::filesystem::rename(out_dir + "/selected.jsonl.partial", out_dir + "/selected.jsonl", ec);
      renamed = ec ? 0 : 1;
    }
    mpi_check(MPI_Bcast(&renamed, 1, MPI_INT, 0, world.comm), "select-data rename");
    if (!renamed) throw std::runtime_error(out_dir + "/selected.jsonl: cannot rename selected.jsonl.partial into place");
  });
  if (outcome.skipped) log_info("select-data: ", outcome.reason);
  return outcome;
}

}  // namespace kmoe
