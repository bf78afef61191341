// `kmoe embed`: embeds every open-data row and every K-shot example into embeddings.h5.
// Layout: /embeddings [corpus rows, dim] and /kshot_embeddings [k, dim] (float32 or
// float16, chunked by block), /ids ("FILE_INDEX:LINE"), /source_file, /line, /source_files,
// /source_files_sha256, /kshot_ids; root attributes name the encoder (kind, model, model
// sha256, pooling, normalize, prefix, dim, max_tokens) and kshot_sha256. Row blocks are the
// work units: handed out by the WorkQueue and committed to a UnitJournal, so a killed run
// redoes only missing blocks, and a block is encoded the same way whatever rank does it,
// which makes the file identical for any number of ranks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// Row indices of a block, in the order they are encoded: sorted by text length (then index)
// and cut into batches of at most batch_size, so a batch pads little.
std::vector<std::vector<int64_t>> embed_batches(const std::vector<int64_t>& text_lengths, int64_t batch_size);

// `kmoe embed`: open-data JSONL and the K-shot file -> embeddings.h5.
struct EmbedOptions {
  std::vector<std::string> corpus;  // open-data files, JSONL (Alpaca or chat messages) (required)
  std::string kshot;                // the K-shot examples, JSONL (required)
  std::string output;               // embeddings.h5 to write (required)
  std::string dtype = "float32";    // float32 or float16 on disk
  int64_t block_rows = 1024;        // rows per work unit (and HDF5 chunk)
  int64_t batch_size = 32;          // texts per encoder call
  // The encoder.
  std::string encoder = "decoder";  // decoder or bert
  std::string encoder_model;        // decoder: HF folder or .gguf; bert: sentence-transformers folder (required)
  int64_t max_tokens = 0;           // truncate longer texts (0: the encoder's default)
  std::string pooling;              // mean or cls (bert; "": from the folder); decoder: mean
  std::string prefix;               // instruction prefix for every text
  bool no_normalize = false;        // do not L2-normalise (default: bert as the folder says, decoder normalises)
  int threads = 0;                  // CPU threads per rank (0: libtorch's default)
  std::string compute_dtype = "float32";  // float32 or bfloat16 (runtime/compute_dtype.h)
  bool force = false;               // run even if the output is complete
};
StageOutcome embed_stage(const MpiWorld& world, const EmbedOptions& options);

}  // namespace kmoe
