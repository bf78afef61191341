// See init_model_command.h. Rank 0 writes; a folder already written with the same options is
// left alone (so a re-run skips), one written with other options is an error unless --force.
#include "trainer/init_model_command.h"

#include <mpi.h>

#include <filesystem>
#include <stdexcept>

#include "data/formats/model_files.h"
#include "data/formats/model_init.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

namespace {

// The folder as every stage will read it: weights for the config, a tokenizer that gives
// back the bytes it was given and keeps ChatML's markers whole, a template kmoe can render.
void check_loads(const std::string& dir) {
  const ModelFiles m = model_files_load(dir);
  const std::string text = "<|im_start|>user\nGrüße, 1 + 2 = 3?<|im_end|>\n";
  const auto ids = m.tokenizer->encode(text, false);
  if (m.tokenizer->decode(ids) != text || ids.front() != kInitImStart || !m.chat_template)
    throw std::runtime_error(dir + ": the written tokenizer does not round-trip ChatML text");
}

}  // namespace

StageOutcome init_model_stage(const MpiWorld& world, const InitModelOptions& options) {
  if (options.output.empty()) throw UsageError("kmoe init-model: --output is required");
  ModelInitOptions o;
  o.hidden = options.hidden;
  o.layers = options.layers;
  o.heads = options.heads;
  o.kv_heads = options.kv_heads;
  o.intermediate = options.intermediate;
  o.max_position = options.max_position;
  o.init_std = options.init_std;
  o.seed = options.seed;
  try {
    model_init_validate(o);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("kmoe init-model: ").append(e.what()));
  }
  const std::string dir = options.output;
  std::string reason;  // rank 0's verdict, as stage_run words it
  if (world.is_root()) {
    if (!options.force && model_init_matches(dir, o)) {
      log_info("init-model: ", dir, " is complete for these options; left as it is");
      reason = "complete";
    } else {
      if (!options.force && std::filesystem::exists(dir)) {
        throw std::runtime_error("kmoe init-model: " + dir +
                                 " exists and was not written by init-model with these options (--force replaces it)");
      }
      reason = std::filesystem::exists(dir) ? "forced" : "absent";
      model_init_write(dir, o);
      check_loads(dir);
      log_info("init-model: wrote ", dir, " (hidden ", o.hidden, ", ", o.layers, " layers, ", o.heads, "/", o.kv_heads,
               " heads, intermediate ", o.intermediate, ", seed ", o.seed, ")");
    }
  }
  reason = mpi_bcast_string(world, reason);  // the others wait for the folder here
  StageOutcome outcome;
  outcome.skipped = reason == "complete";
  outcome.reason = reason;
  outcome.outputs = {dir};
  return outcome;
}

}  // namespace kmoe
