// `kmoe train`, `kmoe bank build`, `kmoe dmt` and `kmoe init-model` on the command line.
#include <sstream>

#include "launcher/commands.h"
#include "launcher/dmt.h"
#include "trainer/init_model_command.h"
#include "trainer/train_command.h"

namespace kmoe {

namespace {

const char* kSignalHelp =
    "Checkpoints: OUTPUT.ckpt.h5 every --checkpoint-every steps and on SIGTERM or SIGUSR1, after which\n"
    "the run exits with code 75 (\"checkpointed, requeue me\"; SLURM: requeue on 75). Running the same\n"
    "command again resumes from the checkpoint and gives the same weights as an uninterrupted run. A\n"
    "checkpoint made with another model, data or options is refused, naming what differs (--force starts\n"
    "over). --micro-batch, --threads and the number of ranks may change between runs: the global batch\n"
    "is an option, so the optimizer step is the same (up to rounding; dropout masks restart from the\n"
    "seed when the number of ranks changes).";

// The options train and bank build share: --model, --data, --output (train only), --force
// and the TrainingFlags.
void training_options_add(po::options_description& d, const TrainingFlags& def, bool with_output,
                          bool with_data = true) {
  d.add_options()("model", po::value<std::string>()->required()->value_name("PATH"), "base model: HF folder or .gguf");
  if (with_data)
    d.add_options()("data", po::value<std::vector<std::string>>()->required()->multitoken()->value_name("FILE..."),
                    "JSONL files (records: messages | text | instruction/output | question/answer, per line); "
                    "FILE:FRACTION (a/b or a decimal) trains on that share of the file's examples");
  if (with_output)
    d.add_options()("output", po::value<std::string>()->required()->value_name("PATH"),
                    "adapter folder (lora), HF folder (full) or moe.h5 (moe)");
  d.add_options()("prompt-format", po::value<std::string>()->default_value(def.prompt_format),
                  "alpaca or chat (the model's chat template), as for score/eval")(
      "epochs", po::value<int64_t>()->default_value(def.epochs), "epochs (default 3; 5 for --mode moe)")(
      "max-steps", po::value<int64_t>()->default_value(def.max_steps),
      "optimizer steps instead of epochs (0: use --epochs)")("global-batch",
                                                             po::value<int64_t>()->default_value(def.global_batch),
                                                             "sequences per optimizer step, over all ranks")(
      "micro-batch", po::value<int64_t>()->default_value(def.micro_batch), "sequences per forward on one rank")(
      "lr", cli_double(def.lr), "peak learning rate")("warmup-ratio", cli_double(def.warmup_ratio),
                                                      "warm-up steps as a fraction of all steps")(
      "warmup-steps", po::value<int64_t>()->default_value(def.warmup_steps),
      "warm-up steps (overrides --warmup-ratio)")("lr-decay", po::value<std::string>()->default_value(def.lr_decay),
                                                  "cosine, linear or constant")(
      "optimizer", po::value<std::string>()->default_value(def.optimizer),
      "adamw, or adafactor (transformers' Adafactor at --lr, scaled by each tensor's RMS;\n"
      "ProMoT's optimizer)")("weight-decay", cli_double(def.weight_decay),
                             "weight decay (default 0; 1e-4 for --mode moe)")(
      "max-grad-norm", cli_double(def.max_grad_norm), "gradient clipping (0: off)")(
      "max-len", po::value<int64_t>()->default_value(def.max_len), "tokens per sequence (the response is cut)")(
      "seed", po::value<uint64_t>()->default_value(def.seed), "initialisation, shuffling and dropout")(
      "checkpoint-every", po::value<int64_t>()->default_value(def.checkpoint_every),
      "steps between checkpoints (0: on signals only)")("log-every", po::value<int64_t>()->default_value(def.log_every),
                                                        "steps between metric lines")(
      "lora-r", po::value<int64_t>()->default_value(def.lora_r), "LoRA rank")(
      "lora-alpha", cli_double(def.lora_alpha), "LoRA alpha")("lora-dropout", cli_double(def.lora_dropout),
                                                              "dropout on the LoRA input while training")(
      "lora-targets", po::value<std::string>()->default_value(def.lora_targets),
      "adapted modules, comma-separated (q_proj,k_proj,v_proj,o_proj,gate_proj,\n"
      "up_proj,down_proj), or all-linear for all seven")("use-rslora", po::bool_switch(),
                                                         "scale alpha / sqrt(r) instead of alpha / r")(
      "device", po::value<std::string>()->default_value(def.device),
      "auto, cpu or cuda (the GPU of the node-local rank)")(
      "dtype", po::value<std::string>()->default_value(def.dtype),
      "auto, float32 or bfloat16: the base weights and activations (auto: bfloat16 on\n"
      "cuda, float32 on the CPU); trained tensors and optimizer state stay float32")(
      "force", po::bool_switch(), "retrain even if the output is complete; discard a checkpoint")(
      "threads", po::value<int>(), "CPU threads per rank (default: libtorch's)");
}

TrainingFlags training_flags(const po::variables_map& vm) {
  TrainingFlags f;
  cli_get(vm, "prompt-format", f.prompt_format);
  cli_get(vm, "epochs", f.epochs);
  cli_get(vm, "max-steps", f.max_steps);
  cli_get(vm, "global-batch", f.global_batch);
  cli_get(vm, "micro-batch", f.micro_batch);
  cli_get(vm, "lr", f.lr);
  cli_get(vm, "warmup-ratio", f.warmup_ratio);
  cli_get(vm, "warmup-steps", f.warmup_steps);
  cli_get(vm, "lr-decay", f.lr_decay);
  cli_get(vm, "optimizer", f.optimizer);
  cli_get(vm, "weight-decay", f.weight_decay);
  cli_get(vm, "max-grad-norm", f.max_grad_norm);
  cli_get(vm, "max-len", f.max_len);
  cli_get(vm, "seed", f.seed);
  cli_get(vm, "checkpoint-every", f.checkpoint_every);
  cli_get(vm, "log-every", f.log_every);
  cli_get(vm, "lora-r", f.lora_r);
  cli_get(vm, "lora-alpha", f.lora_alpha);
  cli_get(vm, "lora-dropout", f.lora_dropout);
  cli_get(vm, "lora-targets", f.lora_targets);
  cli_get(vm, "use-rslora", f.use_rslora);
  cli_get(vm, "device", f.device);
  cli_get(vm, "dtype", f.dtype);
  cli_get(vm, "threads", f.threads);
  return f;
}

}  // namespace

TrainOptions train_options(const po::variables_map& vm) {
  TrainOptions o;
  cli_get(vm, "mode", o.mode);
  cli_get(vm, "model", o.model);
  cli_get(vm, "data", o.data);
  cli_get(vm, "output", o.output);
  cli_get(vm, "init-adapter", o.init_adapter);
  cli_get(vm, "soft-prompt", o.soft_prompt);
  cli_get(vm, "prompt-tokens", o.prompt_tokens);
  cli_get(vm, "prompt-init", o.prompt_init);
  cli_get(vm, "prompt-init-text", o.prompt_init_text);
  cli_get(vm, "adapters", o.adapters);
  cli_get(vm, "top-k", o.top_k);
  cli_get(vm, "aux-loss-coef", o.aux_loss_coef);
  cli_get(vm, "routers-only", o.routers_only);
  cli_get(vm, "expert-lr-scale", o.expert_lr_scale);
  cli_get(vm, "force", o.force);
  o.training = training_flags(vm);
  return o;
}

Subcommand train_subcommand() {
  return {"train",
          std::string("Fine-tune a LoRA, the whole model or a mixture of LoRA experts, data parallel\n\n"
                      "--mode lora writes a PEFT adapter folder + train.h5, --mode full an HF folder + train.h5,\n"
                      "--mode moe a mixture of LoRA experts (moe.h5), --mode prompt a soft prompt (PEFT prompt\n"
                      "tuning folder + train.h5) with the model frozen, --mode lora+prompt a LoRA and a soft prompt\n"
                      "trained jointly (the LoRA's PEFT folder, the prompt in DIR/soft_prompt/). Loss on response\n"
                      "tokens only.\n\n")
              .append(kSignalHelp),
          [](po::options_description& d, po::positional_options_description&) {
            const TrainOptions def;
            d.add_options()("mode", po::value<std::string>()->default_value(def.mode),
                            "lora, full, moe, prompt or lora+prompt");
            training_options_add(d, def.training, true);
            d.add_options()("init-adapter", po::value<std::string>()->value_name("DIR"),
                            "--mode lora: continue from this PEFT adapter; --mode prompt: from this soft prompt")(
                "soft-prompt", po::value<std::string>()->value_name("DIR"),
                "--mode lora, full, moe: put this soft prompt (PEFT prompt tuning) before every\n"
                "sequence, frozen (ProMoT's second stage)")("prompt-tokens",
                                                            po::value<int64_t>()->default_value(def.prompt_tokens),
                                                            "--mode prompt, lora+prompt: virtual tokens of the soft prompt")(
                "prompt-init", po::value<std::string>()->default_value(def.prompt_init),
                "--mode prompt, lora+prompt: vocab (embeddings of random vocabulary tokens)\nor text")(
                "prompt-init-text", po::value<std::string>()->value_name("TEXT"),
                "--mode prompt --prompt-init text: the task's instruction, whose token\n"
                "embeddings (repeated to --prompt-tokens) start the prompt")(
                "adapters", po::value<std::vector<std::string>>()->multitoken()->value_name("DIR..."),
                "--mode moe: the N PEFT adapters that initialise the experts")(
                "top-k", po::value<int64_t>()->default_value(def.top_k), "--mode moe: experts kept per token")(
                "aux-loss-coef", cli_double(def.aux_loss_coef), "--mode moe: Switch load-balancing loss coefficient")(
                "routers-only", po::bool_switch(), "--mode moe: train the routers, keep the experts fixed")(
                "expert-lr-scale", cli_double(def.expert_lr_scale),
                "--mode moe: the experts train at --lr times this, the routers at --lr (1: one lr for all)");
          },
          [](const po::variables_map& vm) { return stage_exit(train_stage(mpi_world(), train_options(vm))); }};
}

BankBuildOptions bank_build_options(const po::variables_map& vm) {
  BankBuildOptions o;
  cli_get(vm, "model", o.model);
  cli_get(vm, "data", o.data);
  cli_get(vm, "output-dir", o.output_dir);
  cli_get(vm, "force", o.force);
  cli_get(vm, "no-index", o.no_index);
  o.training = training_flags(vm);
  return o;
}

Subcommand bank_subcommand() {
  return {"bank",
          std::string("Build a LoRA bank (kmoe bank build): one adapter per open dataset file\n\n"
                      "Writes DIR/<file stem>/ (PEFT layout) per dataset and DIR/bank.h5 listing them; ranks split\n"
                      "the datasets, each finished adapter is committed and a re-run skips it.\n\n")
              .append(kSignalHelp),
          [](po::options_description& d, po::positional_options_description& p) {
            d.add_options()("action", po::value<std::string>()->required(), "build");
            p.add("action", 1);
            training_options_add(d, BankBuildOptions{}.training, false);
            d.add_options()("output-dir", po::value<std::string>()->required()->value_name("DIR"), "the bank folder")(
                "no-index", po::bool_switch(),
                "train the adapters only, do not write DIR/bank.h5 (slurm/bank-array.sbatch: each task\n"
                "trains its slice, and bank.h5 is written once every adapter is there)");
          },
          [](const po::variables_map& vm) {
            const std::string action = vm["action"].as<std::string>();
            if (action != "build") throw UsageError("kmoe bank: unknown action '" + action + "' (valid: build)");
            return stage_exit(bank_build_stage(mpi_world(), bank_build_options(vm)));
          }};
}

DmtOptions dmt_options(const po::variables_map& vm) {
  DmtOptions o;
  cli_get(vm, "mode", o.mode);
  cli_get(vm, "model", o.model);
  cli_get(vm, "special", o.special);
  cli_get(vm, "general", o.general);
  cli_get(vm, "output-dir", o.output_dir);
  std::string k;
  cli_get(vm, "k", k);
  o.k.clear();
  std::istringstream in(k);
  for (std::string t; std::getline(in, t, ',');)
    if (!t.empty()) o.k.push_back(t);
  cli_get(vm, "force", o.force);
  o.baselines = !vm["no-baselines"].as<bool>();
  o.training = training_flags(vm);
  return o;
}

Subcommand dmt_subcommand() {
  return {"dmt",
          std::string("DMT (dual-stage mixed fine-tuning) as one resumable command: stage 1 on the specialised\n"
                      "data, then stage 2 on the general data plus a share k of the specialised data, for each k,\n"
                      "with the baselines (general only, mixed in one stage, sequential). Writes DIR/special,\n"
                      "DIR/general, DIR/mixed, DIR/sequential, DIR/dmt-k1_4, ... and DIR/dmt.json; each run is a\n"
                      "kmoe train stage, skipped when complete and resumed from its checkpoint.\n\n")
              .append(kSignalHelp),
          [](po::options_description& d, po::positional_options_description&) {
            const DmtOptions def;
            d.add_options()("mode", po::value<std::string>()->default_value(def.mode), "lora or full");
            training_options_add(d, def.training, false, false);
            d.add_options()("special",
                            po::value<std::vector<std::string>>()->required()->multitoken()->value_name("FILE..."),
                            "the specialised data (JSONL)")(
                "general", po::value<std::vector<std::string>>()->required()->multitoken()->value_name("FILE..."),
                "the general data (JSONL)")("output-dir", po::value<std::string>()->required()->value_name("DIR"),
                                            "every run's output and dmt.json")(
                "k", po::value<std::string>()->default_value("1,1/4,1/16,1/64,1/256"),
                "shares of the specialised data in stage 2, comma-separated")("no-baselines", po::bool_switch(),
                                                                              "train only special/ and the dmt-k runs");
          },
          [](const po::variables_map& vm) { return stage_exit(dmt_stage(mpi_world(), dmt_options(vm))); }};
}

InitModelOptions init_model_options(const po::variables_map& vm) {
  InitModelOptions o;
  cli_get(vm, "output", o.output);
  cli_get(vm, "hidden", o.hidden);
  cli_get(vm, "layers", o.layers);
  cli_get(vm, "heads", o.heads);
  cli_get(vm, "kv-heads", o.kv_heads);
  cli_get(vm, "intermediate", o.intermediate);
  cli_get(vm, "max-position", o.max_position);
  cli_get(vm, "init-std", o.init_std);
  cli_get(vm, "seed", o.seed);
  cli_get(vm, "force", o.force);
  return o;
}

Subcommand init_model_subcommand() {
  return {
      "init-model", "Write a random-initialised LLaMA HF folder with a byte-level tokenizer and a ChatML template",
      [](po::options_description& d, po::positional_options_description&) {
        const InitModelOptions def;
        d.add_options()("output", po::value<std::string>()->required()->value_name("DIR"),
                        "the model folder (written as DIR.partial, then renamed)")(
            "hidden", po::value<int64_t>()->default_value(def.hidden), "hidden size")(
            "layers", po::value<int64_t>()->default_value(def.layers), "decoder layers")(
            "heads", po::value<int64_t>()->default_value(def.heads), "attention heads")(
            "kv-heads", po::value<int64_t>()->default_value(def.kv_heads), "key/value heads (GQA)")(
            "intermediate", po::value<int64_t>()->default_value(def.intermediate), "SwiGLU intermediate size")(
            "max-position", po::value<int64_t>()->default_value(def.max_position), "max_position_embeddings")(
            "init-std", cli_double(def.init_std), "standard deviation of the weights")(
            "seed", po::value<uint64_t>()->default_value(def.seed), "PRNG seed; the same seed gives the same weights")(
            "force", po::bool_switch(), "replace an existing folder made with other options");
      },
      [](const po::variables_map& vm) { return stage_exit(init_model_stage(mpi_world(), init_model_options(vm))); }};
}

}  // namespace kmoe
