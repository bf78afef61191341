// See json_file.h.
#include "data/text/json_file.h"

#include <fstream>
#include <stdexcept>

namespace kmoe {

nlohmann::json json_file_read(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace kmoe
