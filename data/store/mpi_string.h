// Rank 0's string on every rank of `comm` (collective): how a verdict only rank 0 can reach
// (a file it read, a hash, an I/O error) becomes the same branch on every rank. The one
// string broadcast of kmoe; runtime/mpi_world.h wraps it for an MpiWorld.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace kmoe {

inline std::string mpi_bcast_string(MPI_Comm comm, std::string s) {
  uint64_t n = s.size();
  if (MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm) != MPI_SUCCESS ||
      (s.resize(n), MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, 0, comm)) != MPI_SUCCESS)
    throw std::runtime_error("MPI_Bcast of a string failed");
  return s;
}

}  // namespace kmoe
