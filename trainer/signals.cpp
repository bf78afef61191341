// See signals.h. SA_RESTART: a signal arriving during a read or write of a checkpoint must
// not make that system call fail.
#include "trainer/signals.h"

#include <atomic>
#include <csignal>

namespace kmoe {

namespace {

std::atomic<int> pending_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal flag must be lock-free");
struct sigaction previous_term, previous_usr1;
bool installed = false;

extern "C" void on_signal(int sig) {
  pending_signal.store(sig);
}

}  // namespace

void train_signals_install() {
  pending_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, &previous_term);
  sigaction(SIGUSR1, &sa, &previous_usr1);
  installed = true;
}

void train_signals_restore() {
  if (!installed) return;
  sigaction(SIGTERM, &previous_term, nullptr);
  sigaction(SIGUSR1, &previous_usr1, nullptr);
  installed = false;
}

int train_signal_pending() {
  return pending_signal.load();
}

}  // namespace kmoe
