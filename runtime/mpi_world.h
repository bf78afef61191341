// The MPI world: rank identity, node layout and the two ways kmoe shards work.
// Rank identity always comes from MPI (mpirun or srun --mpi=pmix), never from SLURM_*
// variables; the node layout comes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), so a
// rank's node-local rank is also the GPU it takes. This is the one process-wide object.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kmoe {

struct MpiWorld {
  MPI_Comm comm = MPI_COMM_NULL;       // dup of MPI_COMM_WORLD
  MPI_Comm node_comm = MPI_COMM_NULL;  // ranks sharing this node
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank within the node
  int local_size = 1;  // ranks on this node
  int node_index = 0;  // 0 .. node_count-1, ordered by the lowest world rank on the node
  int node_count = 1;
  int thread_level = 0;                 // MPI_THREAD_* granted by MPI_Init_thread
  std::vector<std::string> host_names;  // per node, indexed by node_index
  std::vector<int> ranks_per_node;      // per node, indexed by node_index
  std::vector<int> node_of_rank;        // per world rank

  bool is_root() const { return rank == 0; }
};

// Initialises MPI (asking for MPI_THREAD_MULTIPLE, which the work queue's server thread
// uses) and fills the world. Call once, before anything else. It first installs kmoe's
// crash reporter (SIGSEGV, SIGBUS, SIGILL, SIGFPE), in place of Open MPI's: one line naming
// the rank and host, a backtrace, then death by the same signal. A crash inside
// MPI_Init_thread says so, and that nothing was read or written: an MPI start-up failure
// (Open MPI 4.1's TCP transport under srun can receive a peer's first message before it is
// ready), which the SLURM tests requeue (slurm/cluster-test-lib.sh).
MpiWorld& mpi_world_init(int* argc, char*** argv);
// The world after mpi_world_init; throws if MPI is not initialised.
MpiWorld& mpi_world();
void mpi_world_finalize();
// Ends every rank of the job with this exit code. Used when one rank fails so the others
// do not wait forever in a collective.
[[noreturn]] void mpi_world_abort(int code);

void mpi_check(int rc, const char* what);  // throws std::runtime_error naming `what`

// Rank 0's `s` on every rank of the world (collective); see data/store/mpi_string.h.
std::string mpi_bcast_string(const MpiWorld& world, std::string s);

// Contiguous, balanced block of [0, n) owned by `rank` of `size`: the first n % size ranks
// get one extra item. Deterministic, so every rank can compute every other rank's block.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};
Range static_split(int64_t n, int rank, int size);

}  // namespace kmoe
