// `kmoe init-model`: writes a random-initialised LLaMA-shaped HF folder with a byte-level
// tokenizer and a ChatML template (data/model_init.h), the base model `kmoe demo` pretrains
// with `kmoe train --mode full`. It sits with the trainer because its only use is to be trained.
#pragma once

#include "launcher/cli.h"

namespace kmoe {

Subcommand init_model_subcommand();

}  // namespace kmoe
