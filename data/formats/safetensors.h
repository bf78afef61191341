// safetensors files (HF's format for model and adapter weights): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
// then the raw tensor bytes. The reader memory-maps the file and validates the header
// before any tensor is touched: offsets inside the data area, dtype × shape = byte length,
// no overlaps. Every error names the file and, where there is one, the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/formats/mapped_file.h"

namespace at {
class Tensor;
}

namespace kmoe {

struct SafetensorsEntry {
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data area
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // maps and validates; throws naming the file
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A tensor with the stored dtype and shape (a copy, owning its memory). Throws naming the
  // file and tensor if it is missing.
  at::Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
  MappedFile file_;
  const uint8_t* map_ = nullptr;  // file_.data
  size_t map_size_ = 0;           // file_.size
  size_t data_start_ = 0;
};

// Writes tensors (CPU or not, any layout; stored contiguous with their dtype) to `path`
// atomically (path.partial, then rename). Names are sorted as HF does.
void safetensors_write(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace kmoe
