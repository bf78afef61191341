// See input_file.h.
#include "data/text/input_file.h"

#include <filesystem>
#include <stdexcept>

namespace kmoe {

std::ifstream input_file_open(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) throw std::runtime_error(path + ": " + what + " does not exist");
  if (std::filesystem::is_directory(st)) throw std::runtime_error(path + ": is a folder, not " + what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open " + what);
  return in;
}

}  // namespace kmoe
