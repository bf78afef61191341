// See demo_table.h. Percentages print with one decimal: with 100 test examples per task a
// step is one point, so more digits would only be noise.
#include "evaluator/demo_table.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "evaluator/png_plot.h"

namespace kmoe {

namespace {

std::string percent(double v) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << v;
  return s.str();
}

// "27.0 ± 3.1" when the table has spreads, else "27.0".
std::string cell(const DemoTable& table, size_t method, size_t task) {
  const double v = task < table.tasks.size() ? table.accuracy[method][task] : demo_table_average(table, method);
  if (table.spread.empty() || !std::isfinite(v)) return percent(v);
  const double sd = task < table.tasks.size() ? table.spread[method][task] : table.average_spread.at(method);
  return std::isfinite(sd) ? percent(v) + " \u00b1 " + percent(sd) : percent(v);  // one run: no sd
}

std::string signed_points(double v) {
  std::string s = percent(v);
  return std::isfinite(v) && v >= 0 ? "+" + s : s;
}

std::string interval(const DemoInterval& d) {
  if (!std::isfinite(d.mean)) return "-";
  if (!std::isfinite(d.lo) || !std::isfinite(d.hi)) return signed_points(d.mean);  // one draw: no interval
  return signed_points(d.mean) + " [" + signed_points(d.lo) + ", " + signed_points(d.hi) + "]";
}

// Display width of a UTF-8 string (counts code points; the table has no wide characters).
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string pad_left(const std::string& s, size_t width) {
  return std::string(width > columns(s) ? width - columns(s) : 0, ' ') + s;
}

std::string pad_right(const std::string& s, size_t width) {
  return s + std::string(width > columns(s) ? width - columns(s) : 0, ' ');
}

// splitmix64, so a seed gives the same resamples with every standard library.
uint64_t bootstrap_next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Mean over draws and examples of a - b at the example indices `pick`.
double mean_difference(const DrawOutcomes& a, const DrawOutcomes& b, const std::vector<size_t>& pick) {
  double sum = 0;
  for (size_t d = 0; d < a.size(); ++d) {
    for (size_t i : pick) sum += a[d][i] - b[d][i];
  }
  return 100.0 * sum / static_cast<double>(a.size() * pick.size());
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

double sample_sd(const std::vector<double>& values) {
  if (values.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  double mean = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double ss = 0;
  for (double v : values) ss += (v - mean) * (v - mean);
  return std::sqrt(ss / static_cast<double>(values.size() - 1));  // NaN propagates
}

std::vector<DemoInterval> paired_bootstrap(const std::vector<DrawOutcomes>& a, const std::vector<DrawOutcomes>& b,
                                           int64_t resamples, uint64_t seed) {
  if (a.size() != b.size() || a.empty()) throw std::invalid_argument("paired_bootstrap: task counts differ or zero");
  std::vector<size_t> n(a.size());
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].size() != b[t].size() || a[t].empty())
      throw std::invalid_argument("paired_bootstrap: task " + std::to_string(t) + ": draw counts differ or zero");
    n[t] = a[t][0].size();
    for (size_t d = 0; d < a[t].size(); ++d) {
      if (a[t][d].size() != n[t] || b[t][d].size() != n[t] || n[t] == 0)
        throw std::invalid_argument("paired_bootstrap: task " + std::to_string(t) + " draw " + std::to_string(d) +
                                    ": example counts differ or zero");
    }
  }
  const size_t tasks = a.size();
  std::vector<DemoInterval> out(tasks + 1);
  std::vector<std::vector<double>> samples(tasks + 1);
  for (size_t t = 0; t < tasks; ++t) {
    std::vector<size_t> all(n[t]);
    for (size_t i = 0; i < n[t]; ++i) all[i] = i;
    out[t].mean = mean_difference(a[t], b[t], all);
    out[tasks].mean += out[t].mean / static_cast<double>(tasks);
  }
  uint64_t state = seed;
  std::vector<size_t> pick;
  for (int64_t r = 0; r < resamples; ++r) {
    double average = 0;
    for (size_t t = 0; t < tasks; ++t) {
      pick.resize(n[t]);
      for (auto& i : pick) i = static_cast<size_t>(bootstrap_next(state) % n[t]);
      const double d = mean_difference(a[t], b[t], pick);
      samples[t].push_back(d);
      average += d / static_cast<double>(tasks);
    }
    samples[tasks].push_back(average);
  }
  for (size_t t = 0; t <= tasks; ++t) {
    if (samples[t].empty()) {
      out[t].lo = out[t].hi = out[t].mean;
      continue;
    }
    out[t].lo = percentile(samples[t], 0.025);
    out[t].hi = percentile(samples[t], 0.975);
  }
  return out;
}

double student_t975(int64_t df) {
  if (df < 1) throw std::invalid_argument("student_t975: degrees of freedom " + std::to_string(df) + " < 1");
  static constexpr double kTable[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                        2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                        2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df <= 30) return kTable[df - 1];
  // Cornish-Fisher expansion of t around the normal quantile (Abramowitz & Stegun 26.7.5).
  const double z = 1.959963984540054, n = static_cast<double>(df);
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
}

std::vector<DemoInterval> draw_t_interval(const std::vector<DrawOutcomes>& a, const std::vector<DrawOutcomes>& b) {
  if (a.size() != b.size() || a.empty()) throw std::invalid_argument("draw_t_interval: task counts differ or zero");
  const size_t draws = a[0].size();
  std::vector<std::vector<double>> per(a.size() + 1, std::vector<double>(draws, 0.0));  // [task + average][draw]
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].size() != draws || b[t].size() != draws || draws == 0)
      throw std::invalid_argument("draw_t_interval: task " + std::to_string(t) + ": draw counts differ or zero");
    for (size_t d = 0; d < draws; ++d) {
      const size_t n = a[t][d].size();
      if (b[t][d].size() != n || n == 0)
        throw std::invalid_argument("draw_t_interval: task " + std::to_string(t) + " draw " + std::to_string(d) +
                                    ": example counts differ or zero");
      double sum = 0;
      for (size_t i = 0; i < n; ++i) sum += a[t][d][i] - b[t][d][i];
      per[t][d] = 100.0 * sum / static_cast<double>(n);
      per[a.size()][d] += per[t][d] / static_cast<double>(a.size());
    }
  }
  std::vector<DemoInterval> out(per.size());
  for (size_t t = 0; t < per.size(); ++t) {
    double mean = 0;
    for (double v : per[t]) mean += v;
    out[t].mean = mean / static_cast<double>(draws);
    out[t].lo = out[t].hi = std::numeric_limits<double>::quiet_NaN();
    if (draws < 2) continue;
    const double half = student_t975(static_cast<int64_t>(draws) - 1) * sample_sd(per[t]) /
                        std::sqrt(static_cast<double>(draws));
    out[t].lo = out[t].mean - half;
    out[t].hi = out[t].mean + half;
  }
  return out;
}

double demo_table_average(const DemoTable& table, size_t method) {
  const auto& row = table.accuracy.at(method);
  if (row.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (double v : row) sum += v;  // NaN propagates
  return sum / static_cast<double>(row.size());
}

std::string demo_table_text(const DemoTable& table) {
  size_t label = 6;
  for (const auto& l : table.method_labels) label = std::max(label, l.size());
  for (const auto& l : table.difference_labels) label = std::max(label, l.size() + 4);
  label = std::max(label, table.reference_label.size() + 6);
  const size_t w = table.spread.empty() ? 9 : 14;
  std::ostringstream s;
  s << pad_right("method", label);
  for (const auto& t : table.tasks) s << pad_left(t, w);
  s << pad_left("average", w) << "\n";
  s << std::string(label + w * (table.tasks.size() + 1), '-') << "\n";
  for (size_t m = 0; m < table.method_labels.size(); ++m) {
    s << pad_right(table.method_labels[m], label);
    for (size_t t = 0; t <= table.tasks.size(); ++t) s << pad_left(cell(table, m, t), w);
    s << "\n";
  }
  // One block of "reference - row" intervals per kind (over the examples, over the draws).
  const auto block = [&](const std::vector<std::vector<DemoInterval>>& rows, const std::string& footer) {
    if (rows.empty()) return;
    const size_t dw = 24;
    s << "\n" << pad_right(table.reference_label + " - ...", label);
    for (const auto& t : table.tasks) s << pad_left(t, dw);
    s << pad_left("average", dw) << "\n";
    s << std::string(label + dw * (table.tasks.size() + 1), '-') << "\n";
    for (size_t b = 0; b < table.difference_labels.size(); ++b) {
      s << pad_right("  - " + table.difference_labels[b], label);
      for (const auto& d : rows[b]) s << pad_left(interval(d), dw);
      s << "\n";
    }
    s << footer << "\n";
  };
  block(table.differences, "(points, mean [paired-bootstrap 95% interval] over the " + table.examples + ")");
  block(table.draw_differences, "(points, mean [95% t interval over the " + std::to_string(table.draws) + " " +
                                    table.over + ": how far the difference moves between draws and their trainings])");
  if (!table.notes.empty()) s << "\n";
  for (const auto& note : table.notes) s << "note: " << note << "\n";
  return s.str();
}

std::string demo_table_markdown(const DemoTable& table) {
  std::ostringstream s;
  s << "| method |";
  for (const auto& t : table.tasks) s << " " << t << " |";
  s << " average |\n|---|";
  for (size_t i = 0; i <= table.tasks.size(); ++i) s << "---:|";
  s << "\n";
  for (size_t m = 0; m < table.method_labels.size(); ++m) {
    s << "| " << table.method_labels[m] << " |";
    for (size_t t = 0; t <= table.tasks.size(); ++t) s << " " << cell(table, m, t) << " |";
    s << "\n";
  }
  const auto block = [&](const std::vector<std::vector<DemoInterval>>& rows, const std::string& title) {
    if (rows.empty()) return;
    s << "\n| " << title << " |";
    for (const auto& t : table.tasks) s << " " << t << " |";
    s << " average |\n|---|";
    for (size_t i = 0; i <= table.tasks.size(); ++i) s << "---:|";
    s << "\n";
    for (size_t b = 0; b < table.difference_labels.size(); ++b) {
      s << "| " << table.difference_labels[b] << " |";
      for (const auto& d : rows[b]) s << " " << interval(d) << " |";
      s << "\n";
    }
  };
  block(table.differences, table.reference_label + " minus");
  block(table.draw_differences, table.reference_label + " minus, t interval over the " + table.over);
  if (!table.notes.empty()) s << "\n";
  for (const auto& note : table.notes) s << "Note: " << note << "\n";
  return s.str();
}

nlohmann::json demo_table_json(const DemoTable& table) {
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json methods = nlohmann::json::array();
  for (size_t m = 0; m < table.method_keys.size(); ++m) {
    nlohmann::json acc = nlohmann::json::object();
    for (size_t t = 0; t < table.tasks.size(); ++t) acc[table.tasks[t]] = number(table.accuracy[m][t]);
    nlohmann::json entry = {{"key", table.method_keys[m]},
                            {"label", table.method_labels[m]},
                            {"accuracy_percent", acc},
                            {"average_percent", number(demo_table_average(table, m))}};
    if (!table.spread.empty()) {
      nlohmann::json sd = nlohmann::json::object();
      for (size_t t = 0; t < table.tasks.size(); ++t) sd[table.tasks[t]] = number(table.spread[m][t]);
      entry["sd_percent"] = sd;
      entry["average_sd_percent"] = number(table.average_spread.at(m));
    }
    methods.push_back(entry);
  }
  nlohmann::json out = {{"tasks", table.tasks}, {"methods", methods}, {"draws", table.draws}};
  if (!table.notes.empty()) out["notes"] = table.notes;
  if (!table.differences.empty()) {
    nlohmann::json diffs = nlohmann::json::array();
    for (size_t b = 0; b < table.difference_labels.size(); ++b) {
      nlohmann::json per = nlohmann::json::object();
      for (size_t t = 0; t <= table.tasks.size(); ++t) {
        const auto& d = table.differences[b][t];
        nlohmann::json cell = {{"mean", number(d.mean)}, {"lo", number(d.lo)}, {"hi", number(d.hi)}};
        if (!table.draw_differences.empty()) {
          const auto& o = table.draw_differences[b][t];
          cell["over_draws"] = {{"lo", number(o.lo)}, {"hi", number(o.hi)}};
        }
        per[t < table.tasks.size() ? table.tasks[t] : std::string("average")] = cell;
      }
      diffs.push_back({{"baseline", table.difference_labels[b]}, {"points", per}});
    }
    out["reference"] = table.reference_label;
    out["full_minus_baseline"] = diffs;
  }
  return out;
}

// One panel per task and one for the average, all on the same accuracy axis (0 to the
// largest value, rounded up to a tick) so that panels compare by eye; method names whole.
Image demo_table_image(const DemoTable& table, size_t highlight) {
  double top = 0;
  for (size_t m = 0; m < table.method_labels.size(); ++m) {
    for (size_t t = 0; t < table.tasks.size(); ++t) {
      const double v = table.accuracy[m][t];
      const double e = table.spread.empty() ? 0 : table.spread[m][t];
      if (std::isfinite(v)) top = std::max(top, v + (std::isfinite(e) ? e : 0));
    }
  }
  const auto ticks = plot_ticks(0, std::max(top, 1.0), 4);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  const double hi = ticks.empty() ? 1.0 : (ticks.back() < top ? ticks.back() + step : ticks.back());
  std::vector<Image> panels;
  for (size_t t = 0; t <= table.tasks.size(); ++t) {
    BarChart chart;
    chart.title = t < table.tasks.size() ? "task " + table.tasks[t] : std::string("average");
    chart.value_label = table.spread.empty() ? table.metric : table.metric + ", mean +- sd over " + table.over;
    chart.labels = table.method_labels;
    chart.width = 420;
    chart.lo = 0;
    chart.hi = hi;
    chart.highlight_label = highlight < table.method_labels.size() ? table.method_labels[highlight] : "";
    for (size_t m = 0; m < table.method_labels.size(); ++m) {
      chart.values.push_back(t < table.tasks.size() ? table.accuracy[m][t] : demo_table_average(table, m));
      if (!table.spread.empty())
        chart.errors.push_back(t < table.tasks.size() ? table.spread[m][t] : table.average_spread.at(m));
      chart.highlight.push_back(m == highlight);
    }
    panels.push_back(bar_chart_render(chart));
  }
  return image_hstack(panels);
}

void demo_table_png(const DemoTable& table, const std::string& path, size_t highlight) {
  png_write(path, demo_table_image(table, highlight));
}

}  // namespace kmoe
