// See artifact.h. Everything HDF5 returns is checked; HDF5's own error printing is turned
// off and the innermost message of its error stack is folded into our exception, which
// names the artifact file and the dataset or attribute involved.
#include "data/store/artifact.h"
#include "data/store/mpi_string.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "data/formats/float16.h"

namespace kmoe {

namespace {

void h5_quiet() {
  static const bool once = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)once;
}

std::string h5_error_text() {
  std::string text;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* out) -> herr_t {
        if (n == 0 && e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? "HDF5 error" : text;
}

[[noreturn]] void h5_fail(const std::string& file, const std::string& what) {
  throw std::runtime_error(file + ": " + what + ": " + h5_error_text());
}

// RAII for hid_t with its matching close function.
struct H5Id {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5Id() {
    if (id >= 0 && close) close(id);
  }
  H5Id(H5Id&& o) noexcept : id(o.id), close(o.close) { o.id = -1; }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  operator hid_t() const { return id; }
};

// IEEE half as h5py defines it, so numpy sees dtype float16.
hid_t make_f16_type() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

H5Id fixed_string_type(size_t size) {
  H5Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, std::max<size_t>(size, 1));
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

std::vector<hsize_t> to_dims(const std::vector<int64_t>& shape) {
  std::vector<hsize_t> d;
  for (int64_t s : shape) {
    if (s < 0) throw std::invalid_argument("negative dimension in dataset shape");
    d.push_back(static_cast<hsize_t>(s));
  }
  return d;
}

H5Id make_space(const std::vector<hsize_t>& dims) {
  if (dims.empty()) return H5Id(H5Screate(H5S_SCALAR), H5Sclose);
  return H5Id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
}

H5Id link_create_plist() {
  H5Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  return lcpl;
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string utc_now_iso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---------------------------------------------------------------------------------------
// ArtifactWriter

ArtifactWriter::ArtifactWriter(MPI_Comm comm, std::string final_path, const Provenance& provenance)
    : comm_(comm), final_path_(std::move(final_path)), partial_path_(final_path_ + ".partial") {
  h5_quiet();
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  // Rank 0 makes the parent folder; everybody learns whether that worked.
  int ok = 1;
  std::string why;
  if (rank_ == 0) {
    std::error_code ec;
    const auto parent = std::filesystem::path(final_path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      ok = 0;
      why = ec.message();
    }
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, comm_);
  if (!ok) throw std::runtime_error(final_path_ + ": cannot create its folder" + (why.empty() ? "" : ": " + why));

  // Only rank 0 opens the file (the serial driver); see the header for why.
  if (rank_ == 0) {
    file_ = H5Fcreate(partial_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file_ < 0) {
      why = h5_error_text();
      std::remove(partial_path_.c_str());
    }
  }
  ok = file_ >= 0 || rank_ != 0 ? 1 : 0;
  MPI_Bcast(&ok, 1, MPI_INT, 0, comm_);
  if (!ok) throw std::runtime_error(partial_path_ + ": cannot create artifact" + (rank_ == 0 ? ": " + why : ""));

  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& in : provenance.inputs)
    inputs.push_back({{"name", in.name}, {"path", in.path}, {"sha256", in.sha256}});
  set_attr("/", "format", std::string("kmoe-artifact"));
  set_attr("/", "format_version", int64_t{1});
  set_attr("/", "stage", provenance.stage);
  set_attr("/", "kmoe_version", provenance.kmoe_version);
  set_attr("/", "git_revision", provenance.git_revision);
  set_attr("/", "options", provenance.options_json);
  set_attr("/", "inputs", inputs.dump());
  set_attr("/", "world_size", provenance.world_size);
  set_attr("/", "start_time", provenance.start_time.empty() ? utc_now_iso8601() : provenance.start_time);
  set_attr("/", "complete", int64_t{0});
}

namespace {
std::atomic<bool> g_io_failed{false};
}  // namespace

bool artifact_io_failed() { return g_io_failed.load(); }

ArtifactWriter::~ArtifactWriter() {
  if (file_ < 0 || committed_) return;
  if (std::uncaught_exceptions() == 0 && H5Fclose(file_) >= 0) return;
  g_io_failed = true;  // left open (or half closed): see artifact_io_failed()
}

void ArtifactWriter::write_small(const std::string& name, const std::vector<int64_t>& shape, hid_t file_type,
                                 hid_t mem_type, const void* data) {
  const auto dims = to_dims(shape);
  H5Id space = make_space(dims);
  H5Id lcpl = link_create_plist();
  if (rank_ != 0) return;  // rank 0 writes; the others pass through
  H5Id dset(H5Dcreate2(file_, name.c_str(), file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (dset < 0) h5_fail(partial_path_, "cannot create dataset '" + name + "'");
  if (H5Sget_simple_extent_npoints(space) == 0) return;
  if (!data) throw std::invalid_argument(partial_path_ + ": no data for dataset '" + name + "' on rank 0");
  if (H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    h5_fail(partial_path_, "cannot write dataset '" + name + "'");
}

void ArtifactWriter::write_floats(const std::string& name, const std::vector<int64_t>& shape, const float* data,
                                  StoreType store) {
  if (store == StoreType::f32) {
    write_small(name, shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data);
    return;
  }
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<uint16_t> bits;
  if (rank_ == 0 && data) {
    bits.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) bits[i] = float_to_half_bits(data[i]);
  }
  H5Id f16(make_f16_type(), H5Tclose);
  write_small(name, shape, f16, f16, rank_ == 0 ? static_cast<const void*>(bits.data()) : nullptr);
}

void ArtifactWriter::write_int64(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data) {
  write_small(name, shape, H5T_STD_I64LE, H5T_NATIVE_INT64, data);
}

void ArtifactWriter::write_strings(const std::string& name, const std::vector<std::string>& values) {
  // The width must agree on all ranks (the call is collective): take the max over ranks.
  uint64_t width = 1;
  for (const auto& v : values) width = std::max<uint64_t>(width, v.size());
  MPI_Allreduce(MPI_IN_PLACE, &width, 1, MPI_UINT64_T, MPI_MAX, comm_);
  std::vector<char> buf(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::copy(values[i].begin(), values[i].end(), buf.begin() + i * width);
  H5Id type = fixed_string_type(width);
  write_small(name, {static_cast<int64_t>(values.size())}, type, type, buf.data());
}

void ArtifactWriter::create_rows(const std::string& name, int64_t rows, int64_t cols, StoreType store,
                                 int64_t chunk_rows) {
  if (rows < 0 || cols <= 0 || chunk_rows <= 0) {
    throw std::invalid_argument(partial_path_ + ": bad row dataset shape for '" + name + "'");
  }
  if (rank_ != 0) return;
  const std::vector<hsize_t> dims{static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  H5Id space = make_space(dims);
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const hsize_t chunk[2] = {static_cast<hsize_t>(std::max<int64_t>(1, std::min(chunk_rows, rows))),
                            static_cast<hsize_t>(cols)};
  H5Pset_chunk(dcpl, 2, chunk);
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);  // every row will be written
  H5Id f16(make_f16_type(), H5Tclose);
  H5Id lcpl = link_create_plist();
  H5Id dset(H5Dcreate2(file_, name.c_str(), store == StoreType::f16 ? hid_t(f16) : H5T_IEEE_F32LE, space, lcpl, dcpl,
                       H5P_DEFAULT),
            H5Dclose);
  if (dset < 0) h5_fail(partial_path_, "cannot create dataset '" + name + "'");
}

void ArtifactWriter::write_rows(const std::string& name, int64_t row_begin, int64_t row_count, const float* data) {
  // Every rank's block travels to rank 0, which writes them in rank order, one at a time
  // (memory: one block per rank in flight).
  int64_t mine[3] = {row_begin, row_count, 0};
  std::vector<int64_t> all(3 * static_cast<size_t>(size_));
  MPI_Gather(mine, 3, MPI_INT64_T, all.data(), 3, MPI_INT64_T, 0, comm_);
  int64_t cols = 0;
  if (rank_ != 0) {
    MPI_Bcast(&cols, 1, MPI_INT64_T, 0, comm_);
    if (row_count > 0) MPI_Send(data, static_cast<int>(row_count * cols), MPI_FLOAT, 0, 7, comm_);
    return;
  }
  {
    H5Id d(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (d >= 0) {
      H5Id sp(H5Dget_space(d), H5Sclose);
      hsize_t dd[2] = {0, 0};
      H5Sget_simple_extent_dims(sp, dd, nullptr);
      cols = static_cast<int64_t>(dd[1]);
    }
  }
  MPI_Bcast(&cols, 1, MPI_INT64_T, 0, comm_);
  write_rows_local(name, row_begin, row_count, data);
  std::vector<float> block;
  for (int r = 1; r < size_; ++r) {
    const int64_t begin = all[3 * r], count = all[3 * r + 1];
    if (count <= 0) continue;
    block.resize(static_cast<size_t>(count * cols));
    MPI_Recv(block.data(), static_cast<int>(block.size()), MPI_FLOAT, r, 7, comm_, MPI_STATUS_IGNORE);
    write_rows_local(name, begin, count, block.data());
  }
}

void ArtifactWriter::write_rows_local(const std::string& name, int64_t row_begin, int64_t row_count,
                                      const float* data) {
  H5Id dset(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (dset < 0) h5_fail(partial_path_, "no dataset '" + name + "' to write rows into");
  H5Id filespace(H5Dget_space(dset), H5Sclose);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(filespace, dims, nullptr);
  if (row_begin < 0 || row_count < 0 || static_cast<hsize_t>(row_begin + row_count) > dims[0]) {
    throw std::out_of_range(partial_path_ + ": rows [" + std::to_string(row_begin) + ", " +
                            std::to_string(row_begin + row_count) + ") outside dataset '" + name + "' of " +
                            std::to_string(dims[0]) + " rows");
  }
  if (row_count == 0) return;
  const hsize_t count[2] = {static_cast<hsize_t>(row_count), dims[1]};
  H5Id mem(H5Screate_simple(2, count, nullptr), H5Sclose);
  const hsize_t start[2] = {static_cast<hsize_t>(row_begin), 0};
  H5Sselect_hyperslab(filespace, H5S_SELECT_SET, start, nullptr, count, nullptr);
  H5Id type(H5Dget_type(dset), H5Tclose);
  herr_t rc;
  if (H5Tget_size(type) == 2) {
    std::vector<uint16_t> bits(static_cast<size_t>(row_count * dims[1]));
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = float_to_half_bits(data[i]);
    H5Id f16(make_f16_type(), H5Tclose);
    rc = H5Dwrite(dset, f16, mem, filespace, H5P_DEFAULT, bits.data());
  } else {
    rc = H5Dwrite(dset, H5T_NATIVE_FLOAT, mem, filespace, H5P_DEFAULT, data);
  }
  if (rc < 0) h5_fail(partial_path_, "cannot write rows of '" + name + "'");
}

namespace {
template <typename Fn>
void with_attr(hid_t file, const std::string& path, const std::string& object, const std::string& key, hid_t type,
               Fn write) {
  H5Id obj(H5Oopen(file, object.c_str(), H5P_DEFAULT), H5Oclose);
  if (obj < 0) h5_fail(path, "no object '" + object + "' for attribute '" + key + "'");
  if (H5Aexists(obj, key.c_str()) > 0) H5Adelete(obj, key.c_str());
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id attr(H5Acreate2(obj, key.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr < 0 || write(hid_t(attr)) < 0) h5_fail(path, "cannot write attribute '" + key + "' on '" + object + "'");
}
}  // namespace

void ArtifactWriter::set_attr(const std::string& object, const std::string& key, const std::string& value) {
  // Variable-length so h5py returns str. Rank 0 writes; every rank passes the same value.
  if (rank_ != 0) return;
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const char* p = value.c_str();
  with_attr(file_, partial_path_, object, key, type, [&](hid_t a) { return H5Awrite(a, type, &p); });
}

void ArtifactWriter::set_attr(const std::string& object, const std::string& key, int64_t value) {
  if (rank_ != 0) return;
  with_attr(file_, partial_path_, object, key, H5T_STD_I64LE,
            [&](hid_t a) { return H5Awrite(a, H5T_NATIVE_INT64, &value); });
}

void ArtifactWriter::set_attr(const std::string& object, const std::string& key, double value) {
  if (rank_ != 0) return;
  with_attr(file_, partial_path_, object, key, H5T_IEEE_F64LE,
            [&](hid_t a) { return H5Awrite(a, H5T_NATIVE_DOUBLE, &value); });
}

void ArtifactWriter::commit() {
  if (committed_) return;
  committed_ = true;
  // Rank 0 alone closes, syncs and renames, and tells the others how it went: an I/O
  // error (a full disk) is then an error on every rank, never a rank left in a collective.
  std::string why;
  if (rank_ == 0) {
    try {
      set_attr("/", "end_time", utc_now_iso8601());
      set_attr("/", "complete", int64_t{1});
      if (H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0) why = "cannot write artifact (disk full?): " + h5_error_text();
    } catch (const std::exception& e) {
      why = e.what();
    }
    const herr_t rc = H5Fclose(file_);
    file_ = -1;
    if (rc < 0 && why.empty()) why = "cannot close artifact (disk full?): " + h5_error_text();
    if (!why.empty()) {
      g_io_failed = true;
      std::remove(partial_path_.c_str());  // give the space back; a partial is never used
      why = partial_path_ + ": " + why;
    } else {
      fsync_path(partial_path_);
      if (std::rename(partial_path_.c_str(), final_path_.c_str()) != 0) {
        why = final_path_ + ": cannot rename " + partial_path_ + " into place: " + std::strerror(errno);
      } else {
        const auto parent = std::filesystem::path(final_path_).parent_path();
        fsync_path(parent.empty() ? "." : parent.string());
      }
    }
  }
  why = mpi_bcast_string(comm_, why);
  if (!why.empty()) throw std::runtime_error(rank_ == 0 ? why : why + " (on rank 0)");
}

// ---------------------------------------------------------------------------------------
// ArtifactReader

ArtifactReader::ArtifactReader(const std::string& path) : path_(path) {
  h5_quiet();
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": artifact does not exist");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) h5_fail(path, "not a readable HDF5 artifact");
}

ArtifactReader::~ArtifactReader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool ArtifactReader::has(const std::string& name) const {
  // H5Lexists fails on missing intermediate groups, so walk the path.
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos) {
    const size_t next = name.find('/', pos);
    prefix = name.substr(0, next);
    pos = next == std::string::npos ? next : next + 1;
    if (prefix.empty()) continue;
    if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

namespace {
H5Id open_dataset(hid_t file, const std::string& path, const std::string& name) {
  H5Id d(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (d < 0) h5_fail(path, "missing dataset '" + name + "'");
  return d;
}
int64_t npoints(hid_t dset) {
  H5Id s(H5Dget_space(dset), H5Sclose);
  return H5Sget_simple_extent_npoints(s);
}
}  // namespace

std::vector<int64_t> ArtifactReader::shape(const std::string& name) const {
  H5Id d = open_dataset(file_, path_, name);
  H5Id s(H5Dget_space(d), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(s);
  std::vector<hsize_t> dims(std::max(nd, 0));
  H5Sget_simple_extent_dims(s, dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

bool ArtifactReader::is_float(const std::string& name) const {
  H5Id d = open_dataset(file_, path_, name);
  H5Id type(H5Dget_type(d), H5Tclose);
  return H5Tget_class(type) == H5T_FLOAT;
}

std::vector<float> ArtifactReader::read_floats(const std::string& name) const {
  const auto dims = shape(name);
  if (dims.size() == 2) return read_rows(name, 0, dims[0]);
  H5Id d = open_dataset(file_, path_, name);
  H5Id type(H5Dget_type(d), H5Tclose);
  if (H5Tget_class(type) != H5T_FLOAT) throw std::runtime_error(path_ + ": dataset '" + name + "' is not float");
  std::vector<float> out(static_cast<size_t>(npoints(d)));
  if (out.empty()) return out;
  if (H5Tget_size(type) == 2) {
    std::vector<uint16_t> bits(out.size());
    H5Id f16(make_f16_type(), H5Tclose);
    if (H5Dread(d, f16, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits.data()) < 0) h5_fail(path_, "cannot read '" + name + "'");
    for (size_t i = 0; i < out.size(); ++i) out[i] = half_bits_to_float(bits[i]);
  } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    h5_fail(path_, "cannot read '" + name + "'");
  }
  return out;
}

std::vector<float> ArtifactReader::read_rows(const std::string& name, int64_t row_begin, int64_t row_count) const {
  H5Id d = open_dataset(file_, path_, name);
  H5Id type(H5Dget_type(d), H5Tclose);
  H5Id fs(H5Dget_space(d), H5Sclose);
  if (H5Sget_simple_extent_ndims(fs) != 2 || H5Tget_class(type) != H5T_FLOAT) {
    throw std::runtime_error(path_ + ": dataset '" + name + "' is not a 2-D float dataset");
  }
  hsize_t dims[2];
  H5Sget_simple_extent_dims(fs, dims, nullptr);
  if (row_begin < 0 || row_count < 0 || static_cast<hsize_t>(row_begin + row_count) > dims[0]) {
    throw std::out_of_range(path_ + ": rows outside dataset '" + name + "'");
  }
  std::vector<float> out(static_cast<size_t>(row_count * dims[1]));
  if (out.empty()) return out;
  const hsize_t start[2] = {static_cast<hsize_t>(row_begin), 0}, count[2] = {static_cast<hsize_t>(row_count), dims[1]};
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, count, nullptr);
  H5Id mem(H5Screate_simple(2, count, nullptr), H5Sclose);
  herr_t rc;
  if (H5Tget_size(type) == 2) {
    std::vector<uint16_t> bits(out.size());
    H5Id f16(make_f16_type(), H5Tclose);
    rc = H5Dread(d, f16, mem, fs, H5P_DEFAULT, bits.data());
    for (size_t i = 0; i < out.size(); ++i) out[i] = half_bits_to_float(bits[i]);
  } else {
    rc = H5Dread(d, H5T_NATIVE_FLOAT, mem, fs, H5P_DEFAULT, out.data());
  }
  if (rc < 0) h5_fail(path_, "cannot read rows of '" + name + "'");
  return out;
}

std::vector<int64_t> ArtifactReader::read_int64(const std::string& name) const {
  H5Id d = open_dataset(file_, path_, name);
  H5Id type(H5Dget_type(d), H5Tclose);
  if (H5Tget_class(type) != H5T_INTEGER) throw std::runtime_error(path_ + ": dataset '" + name + "' is not integer");
  std::vector<int64_t> out(static_cast<size_t>(npoints(d)));
  if (!out.empty() && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    h5_fail(path_, "cannot read '" + name + "'");
  }
  return out;
}

std::vector<int64_t> ArtifactReader::read_int64_at(const std::string& name, const std::vector<int64_t>& indices) const {
  H5Id d = open_dataset(file_, path_, name);
  H5Id type(H5Dget_type(d), H5Tclose);
  H5Id fs(H5Dget_space(d), H5Sclose);
  if (H5Tget_class(type) != H5T_INTEGER || H5Sget_simple_extent_ndims(fs) != 1)
    throw std::runtime_error(path_ + ": dataset '" + name + "' is not a 1-D integer dataset");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(fs, &n, nullptr);
  std::vector<int64_t> out(indices.size());
  if (indices.empty()) return out;
  std::vector<hsize_t> points(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || static_cast<hsize_t>(indices[i]) >= n)
      throw std::out_of_range(path_ + ": element " + std::to_string(indices[i]) + " outside dataset '" + name + "'");
    points[i] = static_cast<hsize_t>(indices[i]);
  }
  H5Sselect_elements(fs, H5S_SELECT_SET, points.size(), points.data());
  const hsize_t count = points.size();
  H5Id mem(H5Screate_simple(1, &count, nullptr), H5Sclose);
  if (H5Dread(d, H5T_NATIVE_INT64, mem, fs, H5P_DEFAULT, out.data()) < 0) h5_fail(path_, "cannot read '" + name + "'");
  return out;
}

std::vector<std::string> ArtifactReader::read_strings(const std::string& name) const {
  H5Id d = open_dataset(file_, path_, name);
  H5Id type(H5Dget_type(d), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING) throw std::runtime_error(path_ + ": dataset '" + name + "' is not strings");
  const auto n = static_cast<size_t>(npoints(d));
  std::vector<std::string> out;
  if (H5Tis_variable_str(type) > 0) {
    std::vector<char*> ptrs(n, nullptr);
    H5Id mt(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(type));  // HDF5 does not convert between ASCII and UTF-8
    if (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      h5_fail(path_, "cannot read '" + name + "'");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Id s(H5Dget_space(d), H5Sclose);
    if (n) H5Dvlen_reclaim(mt, s, H5P_DEFAULT, ptrs.data());
    return out;
  }
  const size_t width = H5Tget_size(type);
  std::vector<char> buf(n * width);
  if (n && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    h5_fail(path_, "cannot read '" + name + "'");
  for (size_t i = 0; i < n; ++i) {
    const char* p = buf.data() + i * width;
    out.emplace_back(p, strnlen(p, width));
  }
  return out;
}

bool ArtifactReader::has_attr(const std::string& object, const std::string& key) const {
  return H5Aexists_by_name(file_, object.c_str(), key.c_str(), H5P_DEFAULT) > 0;
}

namespace {
H5Id open_attr(hid_t file, const std::string& path, const std::string& object, const std::string& key) {
  H5Id a(H5Aopen_by_name(file, object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (a < 0) h5_fail(path, "missing attribute '" + key + "' on '" + object + "'");
  return a;
}
}  // namespace

std::string ArtifactReader::attr_string(const std::string& object, const std::string& key) const {
  H5Id a = open_attr(file_, path_, object, key);
  H5Id type(H5Aget_type(a), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING) throw std::runtime_error(path_ + ": attribute '" + key + "' is not a string");
  if (H5Tis_variable_str(type) > 0) {
    char* p = nullptr;
    H5Id mt(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(type));  // HDF5 does not convert between ASCII and UTF-8
    if (H5Aread(a, mt, &p) < 0) h5_fail(path_, "cannot read attribute '" + key + "'");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  std::vector<char> buf(H5Tget_size(type));
  if (H5Aread(a, type, buf.data()) < 0) h5_fail(path_, "cannot read attribute '" + key + "'");
  return std::string(buf.data(), strnlen(buf.data(), buf.size()));
}

int64_t ArtifactReader::attr_int64(const std::string& object, const std::string& key) const {
  H5Id a = open_attr(file_, path_, object, key);
  int64_t v = 0;
  if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) h5_fail(path_, "attribute '" + key + "' is not an integer");
  return v;
}

double ArtifactReader::attr_double(const std::string& object, const std::string& key) const {
  H5Id a = open_attr(file_, path_, object, key);
  double v = 0;
  if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) h5_fail(path_, "attribute '" + key + "' is not a number");
  return v;
}

Provenance ArtifactReader::provenance() const {
  Provenance p;
  p.stage = attr_string("/", "stage");
  p.kmoe_version = attr_string("/", "kmoe_version");
  p.git_revision = attr_string("/", "git_revision");
  p.options_json = attr_string("/", "options");
  p.world_size = attr_int64("/", "world_size");
  p.start_time = attr_string("/", "start_time");
  const auto inputs = nlohmann::json::parse(attr_string("/", "inputs"), nullptr, false);
  if (!inputs.is_array()) throw std::runtime_error(path_ + ": attribute 'inputs' is not a JSON array");
  for (const auto& in : inputs) {
    p.inputs.push_back({in.value("name", ""), in.value("path", ""), in.value("sha256", "")});
  }
  return p;
}

// ---------------------------------------------------------------------------------------

namespace {
std::string describe_option_differences(const std::string& was_json, const std::string& now_json) {
  const auto was = nlohmann::json::parse(was_json, nullptr, false);
  const auto now = nlohmann::json::parse(now_json, nullptr, false);
  if (!was.is_object() || !now.is_object()) return "options differ";
  std::string out;
  std::map<std::string, int> keys;
  for (const auto& [k, v] : was.items()) keys[k] |= 1;
  for (const auto& [k, v] : now.items()) keys[k] |= 2;
  for (const auto& [k, where] : keys) {
    std::string d;
    if (where == 1)
      d = k + " (only in the artifact)";
    else if (where == 2)
      d = k + " (new)";
    else if (was[k] != now[k])
      d = k + " (" + was[k].dump() + " -> " + now[k].dump() + ")";
    if (!d.empty()) out += (out.empty() ? "" : ", ") + d;
  }
  return "options differ: " + out;
}
}  // namespace

ArtifactStatus artifact_check(const std::string& path, const Provenance& expected) {
  if (!std::filesystem::exists(path)) return {false, "missing"};
  try {
    ArtifactReader r(path);
    if (!r.has_attr("/", "format") || r.attr_string("/", "format") != "kmoe-artifact") {
      return {false, "not a kmoe artifact"};
    }
    if (!r.has_attr("/", "complete") || r.attr_int64("/", "complete") != 1) return {false, "incomplete"};
    const Provenance have = r.provenance();
    if (have.stage != expected.stage)
      return {false, "made by stage '" + have.stage + "', not '" + expected.stage + "'"};
    if (have.options_json != expected.options_json) {
      return {false, describe_option_differences(have.options_json, expected.options_json)};
    }
    std::map<std::string, std::string> was, now;
    for (const auto& in : have.inputs) was[in.name] = in.sha256;
    for (const auto& in : expected.inputs) now[in.name] = in.sha256;
    for (const auto& [name, hash] : now) {
      if (!was.count(name)) return {false, "made without input '" + name + "'"};
      if (was[name] != hash) return {false, "made from other inputs: '" + name + "' differs"};
    }
    for (const auto& [name, hash] : was) {
      if (!now.count(name)) return {false, "made with an extra input '" + name + "'"};
    }
    return {true, "complete"};
  } catch (const std::exception& e) {
    return {false, std::string("unreadable: ") + e.what()};
  }
}

std::string artifact_stage(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "";
  try {
    ArtifactReader r(path);
    if (!r.has_attr("/", "format") || r.attr_string("/", "format") != "kmoe-artifact") return "";
    return r.has_attr("/", "stage") ? r.attr_string("/", "stage") : "";
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace kmoe
