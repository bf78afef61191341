// Per-work-unit progress of a long stage, so that a killed job re-run with the same
// command redoes only the missing units. Each finished unit is one small safetensors file
// in FINAL.units/, written by whichever rank did the unit, atomically (write, fsync,
// rename): a file is either absent or complete. The folder carries the fingerprint of the
// run's inputs and options; a journal left by a run with other inputs is discarded. The
// stage assembles its artifact from the journal at the end and then removes the folder.
// Chosen over reopening the HDF5 artifact: ranks commit independently, without
// collectives, and nothing in the final artifact is ever half-written.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "data/store/artifact.h"

namespace at {
class Tensor;
}

namespace kmoe {

// sha256 of the stage, its options and the content hashes of its inputs.
std::string provenance_fingerprint(const Provenance& provenance);

// Text in a unit's tensors: uint8 bytes plus one trailing NUL (so "" is still a non-empty
// tensor), and back without the NUL.
at::Tensor unit_journal_bytes(const std::string& text);
std::string unit_journal_text(const at::Tensor& bytes);

class UnitJournal {
 public:
  // Collective over comm: rank 0 creates FINAL.units/ (or wipes it when its fingerprint
  // differs, or when `fresh`: --force) and lists the finished units; every rank gets the
  // list. A unit file that does not read back as safetensors (a disk fault, an edit) is
  // removed, with a warning, and will be redone.
  UnitJournal(MPI_Comm comm, const std::string& final_path, const std::string& fingerprint, bool fresh = false);

  bool done(int64_t unit) const { return done_.count(unit) > 0; }
  const std::set<int64_t>& done_units() const { return done_; }  // as of construction, plus this rank's commits
  const std::string& dir() const { return dir_; }

  // Any rank, no collectives: the unit's results, committed atomically.
  void commit(int64_t unit, const std::map<std::string, at::Tensor>& tensors);
  // Any rank: a committed unit's tensors (throws naming the file when absent or corrupt).
  std::map<std::string, at::Tensor> read(int64_t unit) const;
  // Collective: after the final artifact is committed, rank 0 removes the folder.
  void remove();

 private:
  std::string unit_path(int64_t unit) const;

  MPI_Comm comm_;
  int rank_ = 0;
  std::string dir_;
  std::set<int64_t> done_;
};

}  // namespace kmoe
