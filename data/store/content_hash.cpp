// See content_hash.h. Files are read in 4 MiB blocks; model files can be many GB.
#include "data/store/content_hash.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace kmoe {

namespace {

struct Sha256 {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  Sha256() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("SHA-256 init failed");
  }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx.get(), p, n); }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx.get(), md.data(), &len);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 15];
    }
    return out;
  }
};

std::string file_hash(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read input '" + path.string() + "'");
  Sha256 h;
  std::vector<char> buf(4 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error("read error on input '" + path.string() + "'");
  return h.hex();
}

}  // namespace

std::string sha256_hex(const void* data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.hex();
}

std::string content_hash(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw std::runtime_error("input '" + path + "' does not exist");
  if (!fs::is_directory(status)) return file_hash(path);
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), path));
  }
  std::sort(files.begin(), files.end());
  Sha256 h;
  for (const auto& rel : files) {
    const std::string line = rel.generic_string() + '\0' + file_hash(fs::path(path) / rel) + '\n';
    h.update(line.data(), line.size());
  }
  return h.hex();
}

}  // namespace kmoe
