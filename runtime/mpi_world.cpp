// MPI bootstrap and node discovery. Host names are gathered once so `kmoe info` and the
// logs can say where each rank runs; everything else derives from two communicator splits.
#include "runtime/mpi_world.h"

#include "data/store/mpi_string.h"

#include <execinfo.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace kmoe {

namespace {
std::unique_ptr<MpiWorld> g_world;  // the one singleton (STYLE.md)

// The crash reporter (see mpi_world.h). Only async-signal-safe calls in the handler, apart
// from backtrace_symbols_fd, whose library backtrace() loads before any crash.
volatile sig_atomic_t g_in_mpi_init = 0;
char g_who[96] = "rank ?";  // from the launcher's environment: MPI cannot be asked in a crash

void say(const char* s) {
  for (size_t n = std::strlen(s); n > 0;) {
    const ssize_t w = write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

extern "C" void on_fatal_signal(int sig) {
  const char* name = sig == SIGSEGV ? "SIGSEGV (segmentation fault)"
                     : sig == SIGBUS ? "SIGBUS (bus error)"
                     : sig == SIGILL ? "SIGILL (illegal instruction)"
                                     : "SIGFPE (arithmetic exception)";
  say("kmoe: ");
  say(g_who);
  say(": received ");
  say(name);
  if (g_in_mpi_init) {
    say(" inside MPI_Init_thread, before kmoe did any work: nothing was read or written. This is a "
        "start-up failure of the MPI library, not of kmoe (seen with Open MPI 4.1 under srun "
        "--mpi=pmix across nodes: a peer's first message reaches this rank before its MPI layer is "
        "ready, cf. open-mpi/ompi#12495); kmoe's sbatch scripts run srun again at once; otherwise submitting "
        "the job again starts it afresh.\n");
  } else {
    say(".\n");
  }
  void* frames[64];
  const int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  signal(sig, SIG_DFL);  // and die of it, so the launcher reports the signal (and a core is written)
  raise(sig);
}

void crash_reporter_install() {
  const char* rank = nullptr;
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"})
    if (!rank) rank = std::getenv(v);
  std::array<char, 64> host{};
  gethostname(host.data(), host.size() - 1);
  std::snprintf(g_who, sizeof g_who, "rank %s on %s", rank ? rank : "?", host.data());
  void* warm[1];
  backtrace(warm, 1);
  // Open MPI installs its own handlers for these signals inside MPI_Init unless told not to;
  // an explicit OMPI_MCA_opal_signal from the user wins.
  setenv("OMPI_MCA_opal_signal", "", 0);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE}) sigaction(sig, &sa, nullptr);
}

// KMOE_TEST_SEGV_IN_MPI_INIT=PATH (tests): the one rank that creates PATH crashes at the end
// of MPI_Init_thread, as the start-up race does; a requeued job finds PATH and runs.
void test_crash_in_mpi_init() {
  const char* path = std::getenv("KMOE_TEST_SEGV_IN_MPI_INIT");
  if (!path || !*path) return;
  const int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) return;
  close(fd);
  raise(SIGSEGV);
}
}  // namespace

void mpi_check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  std::array<char, MPI_MAX_ERROR_STRING> text{};
  int len = 0;
  MPI_Error_string(rc, text.data(), &len);
  throw std::runtime_error(std::string(what) + " failed: " + std::string(text.data(), len));
}

MpiWorld& mpi_world_init(int* argc, char*** argv) {
  if (g_world) return *g_world;
  int initialized = 0;
  MPI_Initialized(&initialized);
  auto w = std::make_unique<MpiWorld>();
  if (!initialized) {
    crash_reporter_install();
    g_in_mpi_init = 1;
    mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &w->thread_level), "MPI_Init_thread");
    test_crash_in_mpi_init();
    g_in_mpi_init = 0;
  } else {
    MPI_Query_thread(&w->thread_level);
  }
  // Errors come back as codes and become exceptions, which main() turns into one message.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &w->comm), "MPI_Comm_dup");
  MPI_Comm_rank(w->comm, &w->rank);
  MPI_Comm_size(w->comm, &w->size);

  mpi_check(MPI_Comm_split_type(w->comm, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &w->node_comm),
            "MPI_Comm_split_type");
  MPI_Comm_rank(w->node_comm, &w->local_rank);
  MPI_Comm_size(w->node_comm, &w->local_size);

  // A node is named by the lowest world rank on it; nodes are ordered by that rank.
  int leader = w->rank;
  MPI_Allreduce(MPI_IN_PLACE, &leader, 1, MPI_INT, MPI_MIN, w->node_comm);
  std::vector<int> leaders(w->size);
  MPI_Allgather(&leader, 1, MPI_INT, leaders.data(), 1, MPI_INT, w->comm);
  std::vector<int> distinct = leaders;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  w->node_count = static_cast<int>(distinct.size());
  w->node_of_rank.resize(w->size);
  w->ranks_per_node.assign(w->node_count, 0);
  for (int r = 0; r < w->size; ++r) {
    w->node_of_rank[r] =
        static_cast<int>(std::lower_bound(distinct.begin(), distinct.end(), leaders[r]) - distinct.begin());
    w->ranks_per_node[w->node_of_rank[r]]++;
  }
  w->node_index = w->node_of_rank[w->rank];

  std::array<char, 256> host{};
  gethostname(host.data(), host.size() - 1);
  std::vector<char> all(static_cast<size_t>(w->size) * host.size());
  MPI_Allgather(host.data(), static_cast<int>(host.size()), MPI_CHAR, all.data(), static_cast<int>(host.size()),
                MPI_CHAR, w->comm);
  w->host_names.resize(w->node_count);
  for (int n = 0; n < w->node_count; ++n)
    w->host_names[n] = std::string(&all[static_cast<size_t>(distinct[n]) * host.size()]);

  g_world = std::move(w);
  return *g_world;
}

MpiWorld& mpi_world() {
  if (!g_world) throw std::logic_error("mpi_world() called before mpi_world_init()");
  return *g_world;
}

void mpi_world_finalize() {
  if (!g_world) return;
  MPI_Comm_free(&g_world->node_comm);
  MPI_Comm_free(&g_world->comm);
  g_world.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void mpi_world_abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

Range static_split(int64_t n, int rank, int size) {
  if (size <= 0 || rank < 0 || rank >= size) throw std::invalid_argument("static_split: bad rank/size");
  const int64_t base = n / size, extra = n % size;
  Range r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

std::string mpi_bcast_string(const MpiWorld& world, std::string s) {
  return mpi_bcast_string(world.comm, std::move(s));
}

}  // namespace kmoe
