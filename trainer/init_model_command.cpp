// See init_model_command.h. Rank 0 writes; a folder already written with the same options is
// left alone (so a re-run skips), one written with other options is an error unless --force.
#include "trainer/init_model_command.h"

#include <mpi.h>

#include <filesystem>
#include <stdexcept>

#include "data/model_files.h"
#include "data/model_init.h"
#include "launcher/log.h"
#include "launcher/mpi_world.h"

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

int init_model_run(const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  ModelInitOptions o;
  o.hidden = vm["hidden"].as<int64_t>();
  o.layers = vm["layers"].as<int64_t>();
  o.heads = vm["heads"].as<int64_t>();
  o.kv_heads = vm["kv-heads"].as<int64_t>();
  o.intermediate = vm["intermediate"].as<int64_t>();
  o.max_position = vm["max-position"].as<int64_t>();
  o.init_std = vm["init-std"].as<double>();
  o.seed = vm["seed"].as<uint64_t>();
  try {
    model_init_validate(o);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("kmoe init-model: ").append(e.what()));
  }
  const std::string dir = vm["output"].as<std::string>();
  if (world.is_root()) {
    if (!vm["force"].as<bool>() && model_init_matches(dir, o)) {
      log_info("init-model: ", dir, " is complete for these options; left as it is");
    } else {
      if (!vm["force"].as<bool>() && std::filesystem::exists(dir)) {
        throw std::runtime_error("kmoe init-model: " + dir +
                                 " exists and was not written by init-model with these options (--force replaces it)");
      }
      model_init_write(dir, o);
      check_loads(dir);
      log_info("init-model: wrote ", dir, " (hidden ", o.hidden, ", ", o.layers, " layers, ", o.heads, "/", o.kv_heads,
               " heads, intermediate ", o.intermediate, ", seed ", o.seed, ")");
    }
  }
  MPI_Barrier(world.comm);
  return 0;
}

}  // namespace

Subcommand init_model_subcommand() {
  return {"init-model", "Write a random-initialised LLaMA HF folder with a byte-level tokenizer and a ChatML template",
          [](po::options_description& d, po::positional_options_description&) {
            d.add_options()("output", po::value<std::string>()->required()->value_name("DIR"),
                            "the model folder (written as DIR.partial, then renamed)")(
                "hidden", po::value<int64_t>()->default_value(128), "hidden size")(
                "layers", po::value<int64_t>()->default_value(4), "decoder layers")(
                "heads", po::value<int64_t>()->default_value(4), "attention heads")(
                "kv-heads", po::value<int64_t>()->default_value(2), "key/value heads (GQA)")(
                "intermediate", po::value<int64_t>()->default_value(352), "SwiGLU intermediate size")(
                "max-position", po::value<int64_t>()->default_value(1024), "max_position_embeddings")(
                "init-std", po::value<double>()->default_value(0.02), "standard deviation of the weights")(
                "seed", po::value<uint64_t>()->default_value(0), "PRNG seed; the same seed gives the same weights")(
                "force", po::bool_switch(), "replace an existing folder made with other options");
          },
          init_model_run};
}

}  // namespace kmoe
