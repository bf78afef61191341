// `kmoe train` (--mode lora | full | moe) and `kmoe bank build`: option parsing and the
// stage around train_run (train_loop.h). Exit code kExitCheckpointed (75, signals.h) means
// "checkpointed on SIGTERM/SIGUSR1, run the same command again to resume".
#pragma once

#include "launcher/cli.h"

namespace kmoe {

Subcommand train_subcommand();
Subcommand bank_subcommand();  // `kmoe bank build`

}  // namespace kmoe
