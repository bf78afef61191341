// See unit_journal.h.
#include "runtime/unit_journal.h"

#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/store/content_hash.h"
#include "data/formats/safetensors.h"

namespace kmoe {

namespace fs = std::filesystem;

at::Tensor unit_journal_bytes(const std::string& text) {
  at::Tensor t = torch::zeros({static_cast<int64_t>(text.size()) + 1}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), text.data(), text.size());
  return t;
}

std::string unit_journal_text(const at::Tensor& bytes) {
  const auto c = bytes.contiguous();
  const auto* p = reinterpret_cast<const char*>(c.data_ptr<uint8_t>());
  const int64_t n = c.numel();
  return std::string(p, n > 0 && p[n - 1] == '\0' ? n - 1 : n);
}

std::string provenance_fingerprint(const Provenance& p) {
  nlohmann::json j = {{"stage", p.stage}, {"options", p.options_json}};
  for (const auto& in : p.inputs) j["inputs"][in.name] = in.sha256;
  const std::string text = j.dump();
  return sha256_hex(text.data(), text.size());
}

UnitJournal::UnitJournal(MPI_Comm comm, const std::string& final_path, const std::string& fingerprint, bool fresh)
    : comm_(comm), dir_(final_path + ".units") {
  MPI_Comm_rank(comm_, &rank_);
  std::vector<int64_t> units;
  std::string error;
  if (rank_ == 0) {
    try {
      const fs::path manifest = fs::path(dir_) / "fingerprint";
      std::string have;
      if (fs::exists(manifest)) std::getline(std::ifstream(manifest), have);
      if (have != fingerprint || fresh) {
        fs::remove_all(dir_);  // made from other inputs or options, or not a journal
        fs::create_directories(dir_);
        const fs::path tmp = manifest.string() + ".tmp";
        std::ofstream(tmp) << fingerprint << "\n";
        fs::rename(tmp, manifest);
      }
      for (const auto& e : fs::directory_iterator(dir_)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("unit-", 0) == 0 && e.path().extension() == ".safetensors") {
          try {
            const SafetensorsFile check(e.path().string());  // parses the header, checks the sizes
            units.push_back(std::stoll(name.substr(5)));
          } catch (const std::exception& bad) {
            std::cerr << "kmoe: warning: discarding a corrupt journal unit, to be redone: " << bad.what() << "\n";
            fs::remove(e.path());
          }
        }
      }
    } catch (const std::exception& e) {
      error = dir_ + ": " + e.what();
    }
  }
  int64_t n = error.empty() ? static_cast<int64_t>(units.size()) : -1;
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, comm_);
  if (n < 0) throw std::runtime_error(rank_ == 0 ? error : dir_ + ": cannot open the unit journal (see rank 0)");
  units.resize(static_cast<size_t>(n));
  MPI_Bcast(units.data(), static_cast<int>(n), MPI_INT64_T, 0, comm_);
  done_.insert(units.begin(), units.end());
}

std::string UnitJournal::unit_path(int64_t unit) const {
  char name[64];
  std::snprintf(name, sizeof name, "unit-%09lld.safetensors", static_cast<long long>(unit));
  return (fs::path(dir_) / name).string();
}

void UnitJournal::commit(int64_t unit, const std::map<std::string, at::Tensor>& tensors) {
  safetensors_write(unit_path(unit), tensors);  // atomic: .partial, fsync, rename
  done_.insert(unit);
}

std::map<std::string, at::Tensor> UnitJournal::read(int64_t unit) const {
  const SafetensorsFile file(unit_path(unit));
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, entry] : file.entries()) out[name] = file.tensor(name);
  return out;
}

void UnitJournal::remove() {
  MPI_Barrier(comm_);  // nobody still reads a unit
  if (rank_ == 0) fs::remove_all(dir_);
  MPI_Barrier(comm_);
}

}  // namespace kmoe
