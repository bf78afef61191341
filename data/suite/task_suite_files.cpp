// The task suite on disk (see task_suite.h): JSONL with keys in a fixed order and the
// manifest last, so one seed gives the same bytes everywhere. Written into DIR.partial/ and
// renamed, so a killed run never leaves a suite that looks complete.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "data/store/folder_commit.h"
#include "data/store/content_hash.h"
#include "data/suite/task_suite.h"

namespace kmoe {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

std::string kshot_jsonl(const std::vector<KshotExample>& examples) {
  std::string out;
  for (const auto& e : examples) {
    ojson j;
    j["id"] = e.id;
    if (e.input.empty()) {
      j["question"] = e.instruction;
    } else {
      j["instruction"] = e.instruction;
      j["input"] = e.input;
    }
    if (!e.choices.empty()) j["choices"] = e.choices;
    j["answer"] = e.answer;
    j["rationale"] = e.rationale;
    out += j.dump() + "\n";
  }
  return out;
}

std::string open_jsonl(const std::vector<OpenSample>& samples) {
  std::string out;
  for (const auto& s : samples) {
    ojson j;
    j["instruction"] = s.instruction;
    j["input"] = s.input;
    j["output"] = s.output;
    out += j.dump() + "\n";
  }
  return out;
}

ojson file_entry(const std::string& path, const std::string& bytes, size_t count) {
  ojson j;
  j["file"] = path;
  j["count"] = count;
  j["sha256"] = sha256_hex(bytes.data(), bytes.size());
  return j;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_synced(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw std::runtime_error(path.string() + ": cannot be written");
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(path.string() + ": cannot be synced");
  }
  ::close(fd);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> task_suite_files(const TaskSuite& suite) {
  std::vector<std::pair<std::string, std::string>> files;
  ojson manifest;
  manifest["generator"] = "kmoe task suite";
  manifest["version"] = kTaskSuiteVersion;
  manifest["seed"] = suite.options.seed;
  manifest["options"] = {{"samples_per_dataset", suite.options.samples_per_dataset},
                         {"kshot", suite.options.kshot},
                         {"test", suite.options.test},
                         {"validation", suite.options.validation},
                         {"kshot_draws", suite.options.kshot_draws},
                         {"pretrain_docs", suite.options.pretrain_docs}};
  manifest["format"] = {{"open", "alpaca jsonl: instruction, input, output"},
                        {"tasks", "k-shot jsonl: id, question or instruction + input, choices, answer, rationale"},
                        {"pretrain", "jsonl: text"}};
  ojson families = ojson::array();
  for (const auto& f : suite.families) families.push_back({{"name", f.name}, {"description", f.description}});
  manifest["families"] = families;

  ojson datasets = ojson::array();
  for (const auto& d : suite.datasets) {
    const std::string path = "open/" + d.name + ".jsonl";
    files.emplace_back(path, open_jsonl(d.samples));
    ojson e = {{"name", d.name}, {"family", d.family}};
    e.update(file_entry(path, files.back().second, d.samples.size()));
    datasets.push_back(e);
  }
  manifest["datasets"] = datasets;

  ojson tasks = ojson::array();
  for (const auto& t : suite.tasks) {
    ojson e = {{"name", t.name}, {"related_family", t.family}, {"answer_type", t.answer_type}};
    if (!t.answer_regex.empty()) e["answer_regex"] = t.answer_regex;
    if (t.n_choices > 0) e["n_choices"] = t.n_choices;
    const auto split_file = [&](const std::string& name, const std::vector<KshotExample>& examples) {
      const std::string path = "tasks/" + t.name + "/" + name + ".jsonl";
      files.emplace_back(path, kshot_jsonl(examples));
      return file_entry(path, files.back().second, examples.size());
    };
    ojson draws = ojson::array();
    for (size_t d = 0; d < t.kshot_draws.size(); ++d)
      draws.push_back(split_file(d == 0 ? std::string("kshot") : "kshot-" + std::to_string(d), t.kshot_draws[d]));
    e["kshot"] = draws.at(0);
    e["kshot_draws"] = draws;
    e["validation"] = split_file("validation", t.validation);
    e["test"] = split_file("test", t.test);
    tasks.push_back(e);
  }
  manifest["tasks"] = tasks;

  std::string pretrain;
  for (const auto& text : suite.pretrain) pretrain += ojson{{"text", text}}.dump() + "\n";
  files.emplace_back("pretrain.jsonl", pretrain);
  manifest["pretrain"] = file_entry("pretrain.jsonl", pretrain, suite.pretrain.size());

  files.emplace_back("suite.json", manifest.dump(2) + "\n");
  return files;
}

SuiteWrite task_suite_write(const std::vector<std::pair<std::string, std::string>>& files, const std::string& dir,
                            bool force) {
  fs::path target(dir);
  if (target.filename().empty()) target = target.parent_path();  // "dir/"
  const fs::path partial = target.string() + ".partial";
  bool replacing = false;
  if (fs::exists(target)) {
    if (!fs::is_directory(target) || !fs::exists(target / "suite.json")) {
      if (!fs::is_directory(target) || !fs::is_empty(target)) {
        throw std::runtime_error(target.string() + ": exists and is not a task suite (no suite.json); not touched");
      }
    } else {
      bool same = true;
      for (const auto& [path, bytes] : files) {
        if (read_all(target / path) != bytes) {
          same = false;
          break;
        }
      }
      if (same) return SuiteWrite::unchanged;
      if (!force) {
        throw std::runtime_error(target.string() +
                                 ": holds a task suite made with other options or edited since; pass --force to "
                                 "replace it");
      }
      replacing = true;
    }
  }
  std::error_code ec;
  fs::remove_all(partial, ec);
  for (const auto& [path, bytes] : files) write_synced(partial / path, bytes);
  folder_commit(partial.string(), target.string());
  return replacing ? SuiteWrite::replaced : SuiteWrite::written;
}

}  // namespace kmoe
