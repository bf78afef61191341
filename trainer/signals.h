// SIGTERM / SIGUSR1 during training: the handler only records the signal in a lock-free
// atomic; the training loop reads it at each step boundary, the ranks agree with
// Communicator::any(), write a checkpoint and exit with kExitCheckpointed so that a SLURM
// script can requeue the job (SLURM sends SIGTERM before the time limit, or a chosen signal
// with --signal=USR1@120).
#pragma once

#include "runtime/stage_runner.h"  // kExitCheckpointed

namespace kmoe {

// Installs the handlers for SIGTERM and SIGUSR1 (and clears a pending signal); the previous
// handlers come back with train_signals_restore().
void train_signals_install();
void train_signals_restore();
// The signal received since install (SIGTERM or SIGUSR1), or 0.
int train_signal_pending();

}  // namespace kmoe
