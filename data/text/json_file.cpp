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

int32_t json_token_id(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_integer()) throw std::runtime_error(what + ": a token id must be an integer, got " + v.dump());
  if (v.is_number_unsigned() ? v.get<uint64_t>() >= static_cast<uint64_t>(kMaxTokenId)
                             : (v.get<int64_t>() < 0 || v.get<int64_t>() >= kMaxTokenId))
    throw std::runtime_error(what + ": token id " + v.dump() + " is out of range [0, " + std::to_string(kMaxTokenId) + ")");
  return static_cast<int32_t>(v.get<int64_t>());
}

}  // namespace kmoe
