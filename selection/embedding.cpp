// See embedding.h. The final write is collective: ranks take static shares of the blocks,
// read them back from the journal and write them in rounds (a rank with no block in a
// round writes zero rows), because parallel HDF5 needs every rank in every write.
#include "selection/embedding.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "data/encoders/encoder_load.h"
#include "data/store/artifact.h"
#include "data/store/content_hash.h"
#include "data/text/open_corpus.h"
#include "runtime/compute_dtype.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"
#include "runtime/unit_journal.h"
#include "runtime/work_units.h"

namespace kmoe {

std::vector<std::vector<int64_t>> embed_batches(const std::vector<int64_t>& text_lengths, int64_t batch_size) {
  if (batch_size < 1) throw std::invalid_argument("embed_batches: batch_size must be >= 1");
  std::vector<int64_t> order(text_lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return text_lengths[a] < text_lengths[b]; });
  std::vector<std::vector<int64_t>> batches;
  for (size_t i = 0; i < order.size(); i += batch_size) {
    batches.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + batch_size));
  }
  return batches;
}

namespace {

struct Block {
  bool kshot = false;  // a block of K-shot rows rather than corpus rows
  int64_t begin = 0, count = 0;
};

std::unique_ptr<SentenceEncoder> embed_encoder_load(const EmbedOptions& options) {
  if (options.encoder != "bert" && options.encoder != "decoder")
    throw UsageError("kmoe embed: --encoder must be bert or decoder, not '" + options.encoder + "'");
  if (options.max_tokens < 0) throw UsageError("kmoe embed: --max-tokens must be >= 0");
  if (!options.pooling.empty() && options.pooling != "mean" && options.pooling != "cls")
    throw UsageError("kmoe embed: --pooling must be mean or cls, not '" + options.pooling + "'");
  if (options.encoder == "decoder" && !options.pooling.empty() && options.pooling != "mean")
    throw UsageError("kmoe embed: --encoder decoder pools by mean only");
  EncoderSpec spec;
  spec.kind = options.encoder;
  spec.model = options.encoder_model;
  spec.pooling = options.pooling;
  if (options.no_normalize) spec.normalize = false;
  spec.prefix = options.prefix;
  spec.max_tokens = options.max_tokens;
  spec.batch_size = options.batch_size;
  spec.threads = options.threads;
  spec.dtype = options.compute_dtype;
  return encoder_load(spec);
}

}  // namespace

// Over 80 lines: the journalled work-unit loop and then the collective write of the blocks
// and the row ids, which share the block list and the journal.
StageOutcome embed_stage(const MpiWorld& world, const EmbedOptions& options) {
  if (options.corpus.empty() || options.kshot.empty() || options.encoder_model.empty() || options.output.empty()) {
    throw UsageError("kmoe embed: --corpus, --kshot, --encoder-model and --output are required");
  }
  const std::vector<std::string>& corpus_files = options.corpus;
  const std::string& kshot_file = options.kshot;
  const std::string& output = options.output;
  const std::string& dtype = options.dtype;
  if (dtype != "float32" && dtype != "float16") throw UsageError("kmoe embed: --dtype must be float32 or float16");
  ComputeDtype compute;
  try {
    compute = compute_dtype_resolve(options.compute_dtype, "cpu", "--compute-dtype");
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("kmoe embed: ") + e.what());
  }
  if (!compute.warning.empty()) log_warn("embed: ", compute.warning);
  const int64_t block_rows = options.block_rows;
  const int64_t batch_size = options.batch_size;
  if (block_rows < 1 || batch_size < 1) throw UsageError("kmoe embed: --block-rows and --batch-size must be >= 1");

  const std::vector<CorpusRow> rows = open_corpus_read(corpus_files);
  const std::vector<CorpusRow> kshot = kshot_read(kshot_file);
  const int64_t n_rows = static_cast<int64_t>(rows.size()), n_kshot = static_cast<int64_t>(kshot.size());
  std::vector<Block> blocks;
  for (int64_t b = 0; b < n_rows; b += block_rows) blocks.push_back({false, b, std::min(block_rows, n_rows - b)});
  const int64_t n_corpus_blocks = static_cast<int64_t>(blocks.size());
  for (int64_t b = 0; b < n_kshot; b += block_rows) blocks.push_back({true, b, std::min(block_rows, n_kshot - b)});

  StageSpec spec;
  spec.stage = "embed";
  spec.output = output;
  spec.options = {{"encoder", options.encoder},         {"dtype", dtype},
                  {"block_rows", block_rows},           {"batch_size", batch_size},
                  {"normalize", !options.no_normalize}, {"prefix", options.prefix},
                  {"max_tokens", options.max_tokens},   {"pooling", options.pooling}};
  // Recorded when not float32, so float32 artifacts made before it existed stay complete.
  if (compute.name != "float32") spec.options["compute_dtype"] = compute.name;
  for (size_t f = 0; f < corpus_files.size(); ++f)
    spec.inputs.push_back({"corpus" + std::to_string(f), corpus_files[f]});
  spec.inputs.push_back({"kshot", kshot_file});
  spec.inputs.push_back({"encoder_model", options.encoder_model});
  spec.force = options.force;

  const StageOutcome outcome = stage_run(world, spec, [&](const Provenance& prov) {
    const auto encoder = embed_encoder_load(options);
    const EncoderDescription& desc = encoder->describe();
    UnitJournal journal(world.comm, output, provenance_fingerprint(prov), spec.force);
    log_info("embed: ", n_rows, " corpus rows + ", n_kshot, " K-shot rows in ", blocks.size(), " blocks (",
             journal.done_units().size(), " already done), encoder ", desc.kind, " ", desc.model, ", dim ", desc.dim);
    work_units_run(world, journal, {"embedding", static_cast<int64_t>(blocks.size()), "blocks"},
                   [&](int64_t unit) -> UnitTensors {
                     const Block& b = blocks[unit];
                     const std::vector<CorpusRow>& src = b.kshot ? kshot : rows;
                     std::vector<int64_t> lengths(b.count);
                     for (int64_t i = 0; i < b.count; ++i)
                       lengths[i] = static_cast<int64_t>(src[b.begin + i].text.size());
                     at::Tensor out = torch::empty({b.count, desc.dim});  // [block rows, dim]
                     for (const auto& batch : embed_batches(lengths, batch_size)) {
                       std::vector<std::string> texts;
                       for (const int64_t i : batch) texts.push_back(src[b.begin + i].text);
                       const at::Tensor e = encoder->encode(texts);  // [batch, dim]
                       for (size_t j = 0; j < batch.size(); ++j) out[batch[j]] = e[j];
                     }
                     return {{"embeddings", out}};
                   });

    ArtifactWriter w(world.comm, output, prov);
    const StoreType store = dtype == "float16" ? StoreType::f16 : StoreType::f32;
    auto write_blocks = [&](const std::string& name, int64_t first, int64_t count, int64_t total) {
      w.create_rows(name, total, desc.dim, store, block_rows);
      const Range mine = static_split(count, world.rank, world.size);
      const int64_t rounds = (count + world.size - 1) / world.size;
      for (int64_t r = 0; r < rounds; ++r) {
        if (r < mine.size()) {
          const int64_t unit = first + mine.begin + r;
          const at::Tensor e = journal.read(unit).at("embeddings").to(torch::kFloat32).contiguous();
          if (e.size(0) != blocks[unit].count || e.size(1) != desc.dim) {
            throw std::runtime_error(journal.dir() + ": block " + std::to_string(unit) + " has shape [" +
                                     std::to_string(e.size(0)) + ", " + std::to_string(e.size(1)) + "]");
          }
          w.write_rows(name, blocks[unit].begin, blocks[unit].count, e.data_ptr<float>());
        } else {
          w.write_rows(name, 0, 0, nullptr);
        }
      }
    };
    write_blocks("embeddings", 0, n_corpus_blocks, n_rows);
    write_blocks("kshot_embeddings", n_corpus_blocks, static_cast<int64_t>(blocks.size()) - n_corpus_blocks, n_kshot);

    std::vector<std::string> ids, kshot_ids, hashes;
    std::vector<int64_t> file_of, line_of;
    for (const auto& r : rows) {
      ids.push_back(r.id);
      file_of.push_back(r.file);
      line_of.push_back(r.line);
    }
    for (const auto& r : kshot) kshot_ids.push_back(r.id);
    for (const auto& in : prov.inputs) {
      if (in.name.rfind("corpus", 0) == 0) hashes.push_back(in.sha256);
    }
    std::string kshot_sha;
    for (const auto& in : prov.inputs) {
      if (in.name == "kshot") kshot_sha = in.sha256;
    }
    w.write_strings("ids", ids);
    w.write_int64("source_file", {n_rows}, file_of.data());
    w.write_int64("line", {n_rows}, line_of.data());
    w.write_strings("source_files", corpus_files);
    w.write_strings("source_files_sha256", hashes);
    w.write_strings("kshot_ids", kshot_ids);
    w.set_attr("/", "encoder_kind", desc.kind);
    w.set_attr("/", "encoder_model", desc.model);
    w.set_attr("/", "encoder_model_sha256", desc.model_sha256);
    w.set_attr("/", "pooling", desc.pooling);
    w.set_attr("/", "normalize", static_cast<int64_t>(desc.normalize));
    w.set_attr("/", "prefix", desc.prefix);
    w.set_attr("/", "dim", desc.dim);
    w.set_attr("/", "max_tokens", desc.max_tokens);
    w.set_attr("/", "kshot_sha256", kshot_sha);
    w.commit();
    journal.remove();
  });
  if (outcome.skipped) log_info("embed: ", outcome.reason);
  return outcome;
}

}  // namespace kmoe
