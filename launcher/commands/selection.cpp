// `kmoe select-experts`, `kmoe embed` and `kmoe select-data` on the command line.

#include "launcher/commands.h"
#include "selection/embedding.h"
#include "selection/expert_selection.h"
#include "selection/sim_div.h"

namespace kmoe {

SelectExpertsOptions select_experts_options(const po::variables_map& vm) {
  SelectExpertsOptions o;
  cli_get(vm, "scores", o.scores);
  cli_get(vm, "output", o.output);
  cli_get(vm, "m", o.m);
  cli_get(vm, "n", o.n);
  cli_get(vm, "signals", o.signals);
  cli_get(vm, "no-diversity", o.no_diversity);
  cli_get(vm, "force", o.force);
  return o;
}

Subcommand select_experts_subcommand() {
  return {"select-experts", "Pick N diverse expert adapters among the M best of a scored LoRA bank (scores.h5)",
          [](po::options_description& d, po::positional_options_description&) {
            const SelectExpertsOptions def;
            d.add_options()("scores", po::value<std::string>()->required()->value_name("FILE"),
                            "scores.h5 written by kmoe score")(
                "output", po::value<std::string>()->default_value(def.output)->value_name("FILE"),
                "experts.h5 to write")("m", po::value<int64_t>()->default_value(def.m), "candidates kept by R_P + R_A")(
                "n", po::value<int64_t>()->default_value(def.n), "experts chosen among the candidates")(
                "signals", po::value<std::string>()->default_value(def.signals),
                "ranks entering R: both, accuracy (R_A) or perplexity (R_P)")("no-diversity", po::bool_switch(),
                                                                              "choose by member ranks only (no R_D)")(
                "force", po::bool_switch(), "run even if the artifact is complete");
          },
          [](const po::variables_map& vm) {
            return stage_exit(select_experts_stage(mpi_world(), select_experts_options(vm)));
          }};
}

EmbedOptions embed_options(const po::variables_map& vm) {
  EmbedOptions o;
  cli_get(vm, "corpus", o.corpus);
  cli_get(vm, "kshot", o.kshot);
  cli_get(vm, "encoder", o.encoder);
  cli_get(vm, "encoder-model", o.encoder_model);
  cli_get(vm, "output", o.output);
  cli_get(vm, "dtype", o.dtype);
  cli_get(vm, "block-rows", o.block_rows);
  cli_get(vm, "batch-size", o.batch_size);
  cli_get(vm, "max-tokens", o.max_tokens);
  cli_get(vm, "pooling", o.pooling);
  cli_get(vm, "prefix", o.prefix);
  cli_get(vm, "no-normalize", o.no_normalize);
  cli_get(vm, "threads", o.threads);
  cli_get(vm, "compute-dtype", o.compute_dtype);
  cli_get(vm, "force", o.force);
  return o;
}

Subcommand embed_subcommand() {
  return {
      "embed", "Embed open-data JSONL and the K-shot file into embeddings.h5 (resumable, any number of ranks)",
      [](po::options_description& d, po::positional_options_description&) {
        const EmbedOptions def;
        d.add_options()("corpus",
                        po::value<std::vector<std::string>>()->required()->multitoken()->value_name("JSONL..."),
                        "open-data files (Alpaca instruction/input/output or chat messages)")(
            "kshot", po::value<std::string>()->required()->value_name("JSONL"), "the K-shot examples")(
            "encoder", po::value<std::string>()->default_value(def.encoder), "decoder or bert")(
            "encoder-model", po::value<std::string>()->required()->value_name("PATH"),
            "decoder: HF folder or .gguf; bert: sentence-transformers folder")(
            "output", po::value<std::string>()->required()->value_name("H5"), "embeddings.h5 to write")(
            "dtype", po::value<std::string>()->default_value(def.dtype), "float32 or float16 on disk")(
            "block-rows", po::value<int64_t>()->default_value(def.block_rows), "rows per work unit (and HDF5 chunk)")(
            "batch-size", po::value<int64_t>()->default_value(def.batch_size), "texts per encoder call")(
            "max-tokens", po::value<int64_t>()->default_value(def.max_tokens),
            "truncate longer texts (0: the encoder's default: bert from the folder, decoder 512)")(
            "pooling", po::value<std::string>()->default_value(def.pooling),
            "mean or cls (bert; default from the folder's 1_Pooling/config.json); decoder: mean")(
            "prefix", po::value<std::string>()->default_value(def.prefix), "instruction prefix for every text")(
            "no-normalize", po::bool_switch(),
            "do not L2-normalise (default: bert as the folder's modules.json says, decoder normalises)")(
            "threads", po::value<int>()->default_value(def.threads), "CPU threads per rank (0: libtorch's default)")(
            "compute-dtype", po::value<std::string>()->default_value(def.compute_dtype),
            "float32 or bfloat16: the encoder's precision (bfloat16 pays on CPUs with\n"
            "AVX512-BF16 or AMX; embeddings are float32 before --dtype stores them)")(
            "force", po::bool_switch(), "run even if the output is complete");
      },
      [](const po::variables_map& vm) { return stage_exit(embed_stage(mpi_world(), embed_options(vm))); }};
}

SelectDataOptions select_data_options(const po::variables_map& vm) {
  SelectDataOptions o;
  cli_get(vm, "embeddings", o.embeddings);
  cli_get(vm, "corpus", o.corpus);
  cli_get(vm, "kshot", o.kshot);
  cli_get(vm, "c", o.c);
  cli_get(vm, "tau", o.tau);
  cli_get(vm, "score", o.score);
  cli_get(vm, "memory-mb", o.memory_mb);
  cli_get(vm, "output-dir", o.output_dir);
  cli_get(vm, "no-kshot", o.no_kshot);
  cli_get(vm, "expect-encoder", o.expect_encoder);
  cli_get(vm, "expect-encoder-model", o.expect_encoder_model);
  cli_get(vm, "force", o.force);
  return o;
}

Subcommand select_data_subcommand() {
  return {
      "select-data", "K-shot guided Sim-Div selection of open data from embeddings.h5",
      [](po::options_description& d, po::positional_options_description&) {
        const SelectDataOptions def;
        d.add_options()("embeddings", po::value<std::string>()->required()->value_name("H5"),
                        "embeddings.h5 from kmoe embed")(
            "corpus", po::value<std::vector<std::string>>()->required()->multitoken()->value_name("JSONL..."),
            "the open-data files given to kmoe embed, in the same order")(
            "kshot", po::value<std::string>()->required()->value_name("JSONL"), "the K-shot file given to kmoe embed")(
            "c", po::value<int64_t>()->default_value(def.c), "open rows to keep")(
            "tau", cli_double(def.tau), "drop a row whose cosine to a kept row exceeds this")(
            "score", po::value<std::string>()->default_value(def.score),
            "max: max cosine to any K-shot row; mean: cosine to the K-shot mean")(
            "memory-mb", po::value<int64_t>()->default_value(def.memory_mb),
            "memory for streamed blocks and candidates")("output-dir",
                                                         po::value<std::string>()->required()->value_name("DIR"),
                                                         "writes DIR/selected.jsonl and DIR/data_selection.h5")(
            "no-kshot", po::bool_switch(), "do not append the K-shot examples to selected.jsonl")(
            "expect-encoder", po::value<std::string>()->value_name("KIND"),
            "refuse embeddings made by another encoder kind (bert, decoder)")(
            "expect-encoder-model", po::value<std::string>()->value_name("PATH"),
            "refuse embeddings made by another encoder model")("force", po::bool_switch(),
                                                               "run even if data_selection.h5 is complete");
      },
      [](const po::variables_map& vm) { return stage_exit(select_data_stage(mpi_world(), select_data_options(vm))); }};
}

}  // namespace kmoe
