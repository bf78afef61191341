// `kmoe generate`: replies of a base model (HF folder or GGUF), optionally with a PEFT
// adapter, to prompts given on the command line. The quickest way to see that a model and
// an adapter load and behave.
#pragma once

#include "launcher/cli.h"

namespace kmoe {

Subcommand generate_subcommand();

}  // namespace kmoe
