// A read-only memory map of a whole file: how kmoe reads model files (safetensors, GGUF),
// so that a multi-GB checkpoint costs no copy until a tensor is asked for. Pages stay
// backed by the file; the map lives as long as the object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kmoe {

struct MappedFile {
  const uint8_t* data = nullptr;  // nullptr for an empty file
  size_t size = 0;

  MappedFile() = default;
  // Throws "PATH: cannot open <what>: <reason>" (or stat/mmap) naming the file.
  MappedFile(const std::string& path, const std::string& what);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
};

}  // namespace kmoe
