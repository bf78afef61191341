// See report_compare.h. Only reads finished artifacts (complete = 1); one process.
#include "evaluator/report_compare.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "data/store/artifact.h"
#include "evaluator/png_plot.h"
#include "evaluator/report.h"
#include "runtime/log.h"
#include "runtime/stage_runner.h"

namespace kmoe {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kCompareResamples = 2000;
constexpr uint64_t kCompareSeed = 0;

struct Source {
  std::string label;
  std::vector<std::string> files;
};

// "[LABEL=]PATH" -> the eval files it names.
Source source_of(const std::string& arg) {
  Source s;
  std::string path = arg;
  const size_t eq = arg.find('=');
  if (eq != std::string::npos && !fs::exists(arg)) {
    s.label = arg.substr(0, eq);
    path = arg.substr(eq + 1);
    if (s.label.empty()) throw UsageError("kmoe report --compare " + arg + ": empty label before '='");
  }
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.rfind("eval", 0) == 0 && e.path().extension() == ".h5") {
        s.files.push_back(e.path().string());
      }
    }
    std::sort(s.files.begin(), s.files.end());  // eval.h5 before eval_baselines.h5: a fixed order
    if (s.files.empty()) throw std::runtime_error(path + ": no eval*.h5 in this run directory");
  } else if (fs::is_regular_file(path)) {
    s.files.push_back(path);
  } else {
    throw UsageError("kmoe report --compare: " + path + ": no such run directory or file");
  }
  return s;
}

// One graded example list: the test input's file and sha256, and the sample ids.
struct Split {
  std::string task, file, sha256;
  std::vector<std::string> samples;
};

Split split_of(const ArtifactReader& r) {
  Split s;
  s.task = r.attr_string("/", "task");
  for (const auto& in : r.provenance().inputs) {
    if (in.name == "test") {
      s.file = in.path;
      s.sha256 = in.sha256;
    }
  }
  if (s.sha256.empty()) throw std::runtime_error(r.path() + ": no 'test' input in its provenance");
  s.samples = r.read_strings("samples");
  return s;
}

}  // namespace

CompareResult compare_runs(const CompareOptions& options) {
  if (options.sources.empty()) throw UsageError("kmoe report --compare: give at least one run directory or eval file");
  CompareResult out;
  // column key (task + examples' sha256) -> its split; row -> column -> runs' outcomes
  std::vector<std::string> column_keys;
  std::map<std::string, Split> splits;
  std::vector<std::string> rows;
  std::map<std::string, std::map<std::string, std::vector<std::vector<double>>>> cells;
  for (const auto& arg : options.sources) {
    const Source src = source_of(arg);
    for (const auto& file : src.files) {
      ArtifactReader r(file);
      if (!r.has_attr("/", "complete") || r.attr_int64("/", "complete") != 1)
        throw std::runtime_error(file + ": not a complete artifact (an interrupted eval?)");
      if (!r.has("models") || !r.has("correct") || !r.has("samples"))
        throw std::runtime_error(file + ": not an eval artifact (no models/correct/samples)");
      const Split split = split_of(r);
      const std::string key = split.task + "\n" + split.sha256;
      auto [it, fresh] = splits.try_emplace(key, split);
      if (fresh) {
        column_keys.push_back(key);
      } else if (it->second.samples != split.samples) {
        throw std::runtime_error(file + ": its samples differ from those of another evaluation of " + split.file +
                                 " (same file, other examples or order)");
      }
      const auto names = r.read_strings("models");
      const auto correct = r.read_int64("correct");
      const size_t n = split.samples.size();
      if (correct.size() != names.size() * n)
        throw std::runtime_error(file + ": correct has " + std::to_string(correct.size()) + " values, not models (" +
                                 std::to_string(names.size()) + ") x samples (" + std::to_string(n) + ")");
      for (size_t m = 0; m < names.size(); ++m) {
        const std::string row = src.label.empty() ? names[m] : src.label + "/" + names[m];
        if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
        std::vector<double> outcome(correct.begin() + static_cast<std::ptrdiff_t>(m * n),
                                    correct.begin() + static_cast<std::ptrdiff_t>((m + 1) * n));
        for (double& v : outcome) v = v != 0 ? 1.0 : 0.0;
        cells[row][key].push_back(std::move(outcome));
      }
      out.files.push_back(file);
    }
  }
  // Column labels: the task, or task@file-stem when one task has several example files.
  std::map<std::string, int> per_task;
  for (const auto& k : column_keys) ++per_task[splits.at(k).task];
  DemoTable& table = out.table;
  for (const auto& k : column_keys) {
    const Split& s = splits.at(k);
    table.tasks.push_back(per_task[s.task] > 1 ? s.task + "@" + fs::path(s.file).stem().string() : s.task);
  }
  // Runs per column: the most any row has; a row with one run stands for every run.
  std::vector<size_t> runs(column_keys.size(), 0);
  for (size_t c = 0; c < column_keys.size(); ++c) {
    for (const auto& row : rows) {
      const auto it = cells[row].find(column_keys[c]);
      if (it != cells[row].end()) runs[c] = std::max(runs[c], it->second.size());
    }
  }
  const auto outcomes_of = [&](const std::string& row, size_t c) -> DrawOutcomes {
    const auto it = cells[row].find(column_keys[c]);
    if (it == cells[row].end()) return {};
    if (it->second.size() == 1 && runs[c] > 1) return DrawOutcomes(runs[c], it->second[0]);
    return it->second;
  };
  const auto percent = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return 100.0 * sum / static_cast<double>(v.size());
  };
  const size_t max_runs = runs.empty() ? 1 : *std::max_element(runs.begin(), runs.end());
  const bool even = std::all_of(runs.begin(), runs.end(), [&](size_t r) { return r == max_runs; });
  const double nan = std::numeric_limits<double>::quiet_NaN();
  table.draws = static_cast<int64_t>(max_runs);
  table.metric = "accuracy (%)";
  table.over = "runs";
  for (const auto& row : rows) {
    table.method_keys.push_back(row);
    table.method_labels.push_back(row);
    std::vector<double> mean, sd;
    std::vector<double> average(max_runs, 0.0);
    bool whole = even;
    for (size_t c = 0; c < column_keys.size(); ++c) {
      const DrawOutcomes o = outcomes_of(row, c);
      if (o.empty()) {
        mean.push_back(nan);
        sd.push_back(nan);
        whole = false;
        continue;
      }
      std::vector<double> per_run;
      for (const auto& run : o) per_run.push_back(percent(run));
      double sum = 0;
      for (double v : per_run) sum += v;
      mean.push_back(sum / static_cast<double>(per_run.size()));
      sd.push_back(sample_sd(per_run));
      if (whole && per_run.size() == max_runs)
        for (size_t d = 0; d < max_runs; ++d) average[d] += per_run[d] / static_cast<double>(column_keys.size());
      else
        whole = false;
    }
    table.accuracy.push_back(mean);
    table.spread.push_back(sd);
    table.average_spread.push_back(whole ? sample_sd(average) : nan);
  }
  if (max_runs < 2) {
    table.spread.clear();
    table.average_spread.clear();
  }

  // The reference row: as given, else "moe" (the pipeline's row) when there is one.
  std::string reference = options.reference;
  if (reference.empty() && std::find(rows.begin(), rows.end(), "moe") != rows.end()) reference = "moe";
  out.reference = rows.size();
  if (!reference.empty()) {
    const auto it = std::find(rows.begin(), rows.end(), reference);
    if (it == rows.end()) {
      std::string all;
      for (const auto& r : rows) all += (all.empty() ? "" : ", ") + r;
      throw UsageError("kmoe report --compare: --reference " + reference + " names no row (rows: " + all + ")");
    }
    out.reference = static_cast<size_t>(it - rows.begin());
    table.reference_label = reference;
    for (size_t b = 0; b < rows.size(); ++b) {
      if (b == out.reference) continue;
      std::vector<DemoInterval> diff(column_keys.size() + 1, DemoInterval{nan, nan, nan}), over_runs = diff;
      std::vector<DrawOutcomes> all_a, all_b;
      for (size_t c = 0; c < column_keys.size(); ++c) {
        DrawOutcomes a = outcomes_of(reference, c), o = outcomes_of(rows[b], c);
        if (a.empty() || o.empty() || a.size() != o.size()) continue;
        diff[c] = paired_bootstrap({a}, {o}, kCompareResamples, kCompareSeed + b)[0];
        over_runs[c] = draw_t_interval({a}, {o})[0];
        all_a.push_back(std::move(a));
        all_b.push_back(std::move(o));
      }
      if (all_a.size() == column_keys.size()) {
        diff.back() = paired_bootstrap(all_a, all_b, kCompareResamples, kCompareSeed + b).back();
        const bool same_runs = std::all_of(all_a.begin(), all_a.end(),
                                           [&](const DrawOutcomes& a) { return a.size() == all_a[0].size(); });
        if (same_runs) over_runs.back() = draw_t_interval(all_a, all_b).back();
      }
      table.difference_labels.push_back(rows[b]);
      table.differences.push_back(diff);
      if (max_runs > 1) table.draw_differences.push_back(over_runs);
    }
  }
  return out;
}

std::vector<std::string> compare_write(const CompareOptions& options) {
  if (options.output_dir.empty()) throw UsageError("kmoe report --compare: --output DIR is required");
  const CompareResult result = compare_runs(options);
  fs::create_directories(options.output_dir);
  const fs::path dir(options.output_dir);
  const DemoTable& t = result.table;
  std::ostringstream md;
  md << "# kmoe: runs compared\n\n"
     << "Accuracy (%) per task" << (t.draws > 1 ? ", mean ± sd over the runs of each task" : "") << ". "
     << "A row evaluated in one run of a task whose other rows have several (e.g. the base model, which "
        "no K-shot draw changes) stands for every run. Differences: "
     << (t.differences.empty()
             ? "none (no reference row; give --reference)"
             : "`" + t.reference_label + "` minus each row, mean [paired-bootstrap 95% interval over the examples, " +
                   std::to_string(kCompareResamples) +
                   " resamples], where both rows have the "
                   "same runs" +
                   (t.draw_differences.empty()
                        ? std::string()
                        : "; then the same differences with a 95% t interval over the runs (mean ± t(0.975, runs - 1) "
                          "· sd / √runs of the per-run differences), which also sees how far the difference moves "
                          "between runs"))
     << ".\n\n"
     << demo_table_markdown(t) << "\n![runs compared](compare.png)\n\nEvaluations read:\n\n";
  for (const auto& f : result.files) md << "- `" << f << "`\n";
  nlohmann::json j = demo_table_json(t);
  j["files"] = result.files;
  std::vector<std::string> paths;
  png_write((dir / "compare.png").string(), demo_table_image(t, result.reference));
  paths.push_back(report_text_commit(dir / "compare.json", j.dump(2) + "\n"));
  paths.push_back(report_text_commit(dir / "compare.md", md.str()));
  paths.push_back((dir / "compare.png").string());
  std::cout << demo_table_text(t);
  std::cout.flush();
  log_info("report: ", paths[1], ", compare.json, compare.png (", result.files.size(), " evaluations)");
  return paths;
}

}  // namespace kmoe
