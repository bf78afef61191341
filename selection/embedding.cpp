// See embedding.h. The final write is collective: ranks take static shares of the blocks,
// read them back from the journal and write them in rounds (a rank with no block in a
// round writes zero rows), because parallel HDF5 needs every rank in every write.
#include "selection/embedding.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "data/artifact.h"
#include "data/content_hash.h"
#include "data/open_corpus.h"
#include "data/unit_journal.h"
#include "launcher/log.h"
#include "launcher/mpi_world.h"
#include "launcher/progress.h"
#include "launcher/stage_runner.h"
#include "launcher/work_queue.h"
#include "selection/bert_encoder.h"
#include "selection/decoder_encoder.h"

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

std::unique_ptr<SentenceEncoder> encoder_load(const po::variables_map& vm) {
  const std::string kind = vm["encoder"].as<std::string>();
  const std::string model = vm["encoder-model"].as<std::string>();
  const std::string pooling = vm["pooling"].as<std::string>();
  const int64_t max_tokens = vm["max-tokens"].as<int64_t>();
  if (max_tokens < 0) throw UsageError("kmoe embed: --max-tokens must be >= 0");
  if (!pooling.empty() && pooling != "mean" && pooling != "cls") {
    throw UsageError("kmoe embed: --pooling must be mean or cls, not '" + pooling + "'");
  }
  if (kind == "decoder") {
    if (!pooling.empty() && pooling != "mean") throw UsageError("kmoe embed: --encoder decoder pools by mean only");
    DecoderEncoderOptions o;
    o.normalize = !vm["no-normalize"].as<bool>();
    o.prefix = vm["prefix"].as<std::string>();
    if (max_tokens > 0) o.max_tokens = max_tokens;
    o.threads = vm["threads"].as<int>();
    return decoder_encoder_load(model, o);
  }
  if (kind == "bert") {
    BertEncoderOptions o;
    o.pooling = pooling;
    if (vm["no-normalize"].as<bool>()) o.normalize = false;
    o.prefix = vm["prefix"].as<std::string>();
    o.max_tokens = max_tokens;
    o.batch_size = vm["batch-size"].as<int64_t>();
    o.threads = vm["threads"].as<int>();
    return bert_encoder_load(model, o);
  }
  throw UsageError("kmoe embed: --encoder must be bert or decoder, not '" + kind + "'");
}

int embed_run(const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  const auto corpus_files = vm["corpus"].as<std::vector<std::string>>();
  const std::string kshot_file = vm["kshot"].as<std::string>();
  const std::string output = vm["output"].as<std::string>();
  const std::string dtype = vm["dtype"].as<std::string>();
  if (dtype != "float32" && dtype != "float16") throw UsageError("kmoe embed: --dtype must be float32 or float16");
  const int64_t block_rows = vm["block-rows"].as<int64_t>();
  const int64_t batch_size = vm["batch-size"].as<int64_t>();
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
  spec.options = {{"encoder", vm["encoder"].as<std::string>()},
                  {"dtype", dtype},
                  {"block_rows", block_rows},
                  {"batch_size", batch_size},
                  {"normalize", !vm["no-normalize"].as<bool>()},
                  {"prefix", vm["prefix"].as<std::string>()},
                  {"max_tokens", vm["max-tokens"].as<int64_t>()},
                  {"pooling", vm["pooling"].as<std::string>()}};
  for (size_t f = 0; f < corpus_files.size(); ++f)
    spec.inputs.push_back({"corpus" + std::to_string(f), corpus_files[f]});
  spec.inputs.push_back({"kshot", kshot_file});
  spec.inputs.push_back({"encoder_model", vm["encoder-model"].as<std::string>()});
  spec.force = vm["force"].as<bool>();

  const StageOutcome outcome = stage_run(world, spec, [&](const Provenance& prov) {
    const auto encoder = encoder_load(vm);
    const EncoderDescription& desc = encoder->describe();
    UnitJournal journal(world.comm, output, provenance_fingerprint(prov), spec.force);
    log_info("embed: ", n_rows, " corpus rows + ", n_kshot, " K-shot rows in ", blocks.size(), " blocks (",
             journal.done_units().size(), " already done), encoder ", desc.kind, " ", desc.model, ", dim ", desc.dim);
    {
      WorkQueue queue(world, static_cast<int64_t>(blocks.size()));
      ProgressOptions popt;
      popt.enabled = world.is_root();
      Progress progress("embedding", static_cast<int64_t>(blocks.size()), "blocks", popt);
      while (const auto unit = queue.next()) {
        if (!journal.done(*unit)) {
          const Block& b = blocks[*unit];
          const std::vector<CorpusRow>& src = b.kshot ? kshot : rows;
          std::vector<int64_t> lengths(b.count);
          for (int64_t i = 0; i < b.count; ++i) lengths[i] = static_cast<int64_t>(src[b.begin + i].text.size());
          at::Tensor out = torch::empty({b.count, desc.dim});  // [block rows, dim]
          for (const auto& batch : embed_batches(lengths, batch_size)) {
            std::vector<std::string> texts;
            for (const int64_t i : batch) texts.push_back(src[b.begin + i].text);
            const at::Tensor e = encoder->encode(texts);  // [batch, dim]
            for (size_t j = 0; j < batch.size(); ++j) out[batch[j]] = e[j];
          }
          journal.commit(*unit, {{"embeddings", out}});
        }
        if (world.is_root()) progress.set(queue.handed_out());
      }
      progress.finish();
    }
    mpi_check(MPI_Barrier(world.comm), "embed barrier");

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
  return 0;
}

}  // namespace

Subcommand embed_subcommand() {
  return {"embed", "Embed open-data JSONL and the K-shot file into embeddings.h5 (resumable, any number of ranks)",
          [](po::options_description& d, po::positional_options_description&) {
            d.add_options()("corpus",
                            po::value<std::vector<std::string>>()->required()->multitoken()->value_name("JSONL..."),
                            "open-data files (Alpaca instruction/input/output or chat messages)")(
                "kshot", po::value<std::string>()->required()->value_name("JSONL"), "the K-shot examples")(
                "encoder", po::value<std::string>()->default_value("decoder"), "decoder or bert")(
                "encoder-model", po::value<std::string>()->required()->value_name("PATH"),
                "decoder: HF folder or .gguf; bert: sentence-transformers folder")(
                "output", po::value<std::string>()->required()->value_name("H5"), "embeddings.h5 to write")(
                "dtype", po::value<std::string>()->default_value("float32"), "float32 or float16 on disk")(
                "block-rows", po::value<int64_t>()->default_value(1024), "rows per work unit (and HDF5 chunk)")(
                "batch-size", po::value<int64_t>()->default_value(32), "texts per encoder call")(
                "max-tokens", po::value<int64_t>()->default_value(0),
                "truncate longer texts (0: the encoder's default: bert from the folder, decoder 512)")(
                "pooling", po::value<std::string>()->default_value(""),
                "mean or cls (bert; default from the folder's 1_Pooling/config.json); decoder: mean")(
                "prefix", po::value<std::string>()->default_value(""), "instruction prefix for every text")(
                "no-normalize", po::bool_switch(),
                "do not L2-normalise (default: bert as the folder's modules.json says, decoder normalises)")(
                "threads", po::value<int>()->default_value(0), "CPU threads per rank (0: libtorch's default)")(
                "force", po::bool_switch(), "run even if the output is complete");
          },
          embed_run};
}

}  // namespace kmoe
