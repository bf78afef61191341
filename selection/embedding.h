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

#include "launcher/cli.h"

namespace kmoe {

// Row indices of a block, in the order they are encoded: sorted by text length (then index)
// and cut into batches of at most batch_size, so a batch pads little.
std::vector<std::vector<int64_t>> embed_batches(const std::vector<int64_t>& text_lengths, int64_t batch_size);

Subcommand embed_subcommand();

}  // namespace kmoe
