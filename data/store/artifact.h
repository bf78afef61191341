// The HDF5 artifact store: every stage writes exactly one artifact through ArtifactWriter,
// and every artifact is readable with plain h5py. The calls are collective, but only rank 0
// holds the file (FINAL.partial, HDF5's serial driver): row blocks of the other ranks reach
// it over MPI. Parallel HDF5 (MPI-IO) was the first design; it deadlocks or crashes when a
// write fails on one rank (a full disk): its collective close carries on past the error.
// commit() closes on rank 0, which renames FINAL.partial to FINAL and tells every rank the
// outcome. A crash at any earlier point leaves nothing under FINAL, and a completed FINAL
// carries provenance attributes that artifact_check() compares with a new run's.
#pragma once

#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kmoe {

// How a float dataset is stored on disk (data is always passed as float32 in memory).
enum class StoreType { f32, f16 };

struct InputRecord {
  std::string name;    // the input's role, e.g. "kshot", "model"
  std::string path;    // as given by the user (informative; not compared)
  std::string sha256;  // content_hash() of the file or directory
};

struct Provenance {
  std::string stage;         // subcommand that made the artifact
  std::string kmoe_version;  // e.g. "0.1.0"
  std::string git_revision;
  std::string options_json;  // the stage's options as canonical JSON (sorted keys)
  std::vector<InputRecord> inputs;
  int64_t world_size = 1;
  std::string start_time;  // ISO 8601 UTC
};

std::string utc_now_iso8601();

class ArtifactWriter {
 public:
  // Collective over comm. Creates FINAL.partial (replacing a leftover from a killed run)
  // and writes the provenance attributes.
  ArtifactWriter(MPI_Comm comm, std::string final_path, const Provenance& provenance);
  // Without commit(): FINAL is untouched. While an exception unwinds the file is left
  // open, because closing is collective and the other ranks may not be here.
  ~ArtifactWriter();
  ArtifactWriter(const ArtifactWriter&) = delete;
  ArtifactWriter& operator=(const ArtifactWriter&) = delete;

  // Small datasets. Collective: every rank passes the same name and shape; rank 0's data
  // is written (other ranks may pass nullptr). Names may contain '/' (groups are created).
  void write_floats(const std::string& name, const std::vector<int64_t>& shape, const float* data,
                    StoreType store = StoreType::f32);
  void write_int64(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data);
  // UTF-8, stored fixed-length (parallel HDF5 cannot write variable-length data); h5py
  // reads them with `.asstr()`.
  void write_strings(const std::string& name, const std::vector<std::string>& values);

  // A rows × cols float dataset, chunked by `chunk_rows`, filled by row blocks. Collective.
  void create_rows(const std::string& name, int64_t rows, int64_t cols, StoreType store, int64_t chunk_rows);
  // Collective: every rank calls once per round with its own block (row_count may be 0).
  // data is [row_count, cols] float32.
  void write_rows(const std::string& name, int64_t row_begin, int64_t row_count, const float* data);

  // Attributes on the root ("/") or on a dataset or group. Collective, same value on all ranks.
  void set_attr(const std::string& object, const std::string& key, const std::string& value);
  void set_attr(const std::string& object, const std::string& key, int64_t value);
  void set_attr(const std::string& object, const std::string& key, double value);

  // Collective: rank 0 stamps end_time and complete = 1, closes the file and renames
  // FINAL.partial to FINAL (after fsync). Throws on every rank if writing, closing or
  // renaming failed (the partial file is then removed).
  void commit();

  const std::string& final_path() const { return final_path_; }
  const std::string& partial_path() const { return partial_path_; }
  int rank() const { return rank_; }

 private:
  void write_small(const std::string& name, const std::vector<int64_t>& shape, hid_t file_type, hid_t mem_type,
                   const void* data);
  void write_rows_local(const std::string& name, int64_t row_begin, int64_t row_count, const float* data);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::string final_path_, partial_path_;
  hid_t file_ = -1;
  bool committed_ = false;
};

// True once an artifact could not be closed (a full disk, an I/O error) or was abandoned
// open by an exception. HDF5 then holds a file it cannot close, and its own clean-up at
// MPI_Finalize would crash on it: main ends such a process without MPI_Finalize.
bool artifact_io_failed();

// Reads an artifact with the serial driver: any rank, any number of readers, no MPI.
class ArtifactReader {
 public:
  explicit ArtifactReader(const std::string& path);
  ~ArtifactReader();
  ArtifactReader(const ArtifactReader&) = delete;
  ArtifactReader& operator=(const ArtifactReader&) = delete;

  bool has(const std::string& name) const;
  std::vector<int64_t> shape(const std::string& name) const;
  bool is_float(const std::string& name) const;
  std::vector<float> read_floats(const std::string& name) const;  // f32 or f16 on disk
  std::vector<float> read_rows(const std::string& name, int64_t row_begin, int64_t row_count) const;
  std::vector<int64_t> read_int64(const std::string& name) const;
  // The elements at `indices` (in that order) of the 1-D integer dataset `name`, read without
  // the rest: a few rows of a 10M-row index.
  std::vector<int64_t> read_int64_at(const std::string& name, const std::vector<int64_t>& indices) const;
  std::vector<std::string> read_strings(const std::string& name) const;

  bool has_attr(const std::string& object, const std::string& key) const;
  std::string attr_string(const std::string& object, const std::string& key) const;
  int64_t attr_int64(const std::string& object, const std::string& key) const;
  double attr_double(const std::string& object, const std::string& key) const;

  Provenance provenance() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  hid_t file_ = -1;
};

struct ArtifactStatus {
  bool complete = false;
  std::string reason;  // why not, in words: "missing", "made from other inputs: kshot differs", ...
};
// Is the artifact at `path` a committed artifact of expected.stage, made with the same
// options and from inputs with the same content hashes? Serial; never throws for a bad
// or foreign file (that is a reason, not an error).
ArtifactStatus artifact_check(const std::string& path, const Provenance& expected);

// The stage that wrote the kmoe artifact at `path`, or "" when it is missing, unreadable
// or not a kmoe artifact. Serial; never throws.
std::string artifact_stage(const std::string& path);

}  // namespace kmoe
