// See safetensors.h. The whole header is validated in the constructor so that a bad file
// fails when it is opened, naming the file, rather than halfway through loading a model.
// Byte order is little-endian on disk and assumed little-endian in memory (x86, arm64).
#include "data/formats/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/shape_text.h"

namespace kmoe {
namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* dtype_find(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DtypeInfo* dtype_find(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

// Parses one header entry; throws a bare reason, the caller adds file and tensor.
SafetensorsEntry entry_parse(const nlohmann::json& j) {
  if (!j.is_object()) throw std::runtime_error("entry is not an object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(key)) throw std::runtime_error(std::string("missing '") + key + "'");
  }
  SafetensorsEntry e;
  if (!j["dtype"].is_string()) throw std::runtime_error("'dtype' is not a string");
  e.dtype = j["dtype"].get<std::string>();
  const DtypeInfo* info = dtype_find(e.dtype);
  if (!info) throw std::runtime_error("unknown or unsupported dtype '" + e.dtype + "'");
  if (!j["shape"].is_array()) throw std::runtime_error("'shape' is not an array");
  uint64_t numel = 1;
  for (const auto& d : j["shape"]) {
    if (!d.is_number_unsigned()) throw std::runtime_error("'shape' holds a non-negative-integer value");
    const uint64_t v = d.get<uint64_t>();
    if (v > (uint64_t{1} << 48)) throw std::runtime_error("dimension too large");
    e.shape.push_back(static_cast<int64_t>(v));
    numel *= v;
    if (numel > (uint64_t{1} << 48)) throw std::runtime_error("too many elements");
  }
  const auto& off = j["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    throw std::runtime_error("'data_offsets' is not [begin, end]");
  }
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.end < e.begin) throw std::runtime_error("data_offsets end before begin");
  if (e.end - e.begin != numel * info->size) {
    throw std::runtime_error("dtype " + e.dtype + " × shape " + shape_text(e.shape) + " is " +
                             std::to_string(numel * info->size) + " bytes but data_offsets span " +
                             std::to_string(e.end - e.begin));
  }
  return e;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), file_(path, "safetensors file") {
  map_ = file_.data;
  map_size_ = file_.size;
  if (map_size_ < 8) {
    throw std::runtime_error(path + ": truncated safetensors file (" + std::to_string(map_size_) +
                             " bytes, less than the 8-byte header length)");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | map_[i];
  if (header_len > map_size_ - 8) {
    throw std::runtime_error(path + ": header length " + std::to_string(header_len) + " runs past the end of the " +
                             std::to_string(map_size_) + "-byte file (truncated or not a safetensors file)");
  }
  data_start_ = 8 + static_cast<size_t>(header_len);
  const uint64_t data_size = map_size_ - data_start_;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(map_ + 8, map_ + data_start_);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw std::runtime_error(path + ": header is not a JSON object");
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) throw std::runtime_error(path + ": __metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) throw std::runtime_error(path + ": __metadata__ value '" + k + "' is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    SafetensorsEntry e;
    try {
      e = entry_parse(value);
    } catch (const std::runtime_error& ex) {
      throw std::runtime_error(path + ": tensor '" + name + "': " + ex.what());
    }
    if (e.end > data_size) {
      throw std::runtime_error(path + ": tensor '" + name + "': data_offsets [" + std::to_string(e.begin) + ", " +
                               std::to_string(e.end) + "] run past the end of the " + std::to_string(data_size) +
                               "-byte data area (truncated file?)");
    }
    entries_.emplace(name, std::move(e));
  }
  std::vector<std::pair<const std::string*, const SafetensorsEntry*>> by_offset;
  for (const auto& [name, e] : entries_) {
    if (e.end > e.begin) by_offset.emplace_back(&name, &e);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i].second->begin < by_offset[i - 1].second->end) {
      throw std::runtime_error(path + ": tensors '" + *by_offset[i - 1].first + "' and '" + *by_offset[i].first +
                               "' overlap in the data area");
    }
  }
}

SafetensorsFile::~SafetensorsFile() = default;

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw std::out_of_range(path_ + ": no tensor '" + name + "'");
  const SafetensorsEntry& e = it->second;
  at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(dtype_find(e.dtype)->type));
  if (e.end > e.begin) std::memcpy(t.data_ptr(), map_ + data_start_ + e.begin, e.end - e.begin);
  return t;
}

void safetensors_write(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw std::invalid_argument(path + ": '__metadata__' cannot be a tensor name");
    if (!tensor.defined()) throw std::invalid_argument(path + ": tensor '" + name + "' is undefined");
    const DtypeInfo* info = dtype_find(tensor.scalar_type());
    if (!info) {
      throw std::invalid_argument(path + ": tensor '" + name + "' has dtype " +
                                  std::string(c10::toString(tensor.scalar_type())) +
                                  ", which safetensors cannot store");
    }
    at::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * info->size;
    header[name] = {{"dtype", info->name},
                    {"shape", std::vector<int64_t>(t.sizes().begin(), t.sizes().end())},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // as HF: data starts 8-byte aligned
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(partial + ": cannot open for writing");
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : data) {
      if (t.numel() == 0) continue;
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    }
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(partial, ec);
      throw std::runtime_error(partial + ": write failed");
    }
  }
  // On disk before it gets its final name, so a crash of the node cannot leave a named but
  // empty file (journals of long stages rely on this).
  if (const int fd = ::open(partial.c_str(), O_RDONLY); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  std::filesystem::rename(partial, path, ec);
  if (ec) throw std::runtime_error(path + ": cannot rename " + partial + " into place: " + ec.message());
}

}  // namespace kmoe
