// See demo_table.h. Percentages print with one decimal: with 100 test examples per task a
// step is one point, so more digits would only be noise.
#include "evaluator/demo_table.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "evaluator/png_plot.h"

namespace kmoe {

namespace {

std::string percent(double v) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << v;
  return s.str();
}

}  // namespace

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
  std::ostringstream s;
  s << std::left << std::setw(static_cast<int>(label)) << "method";
  for (const auto& t : table.tasks) s << std::right << std::setw(9) << t;
  s << std::right << std::setw(9) << "average"
    << "\n";
  s << std::string(label + 9 * (table.tasks.size() + 1), '-') << "\n";
  for (size_t m = 0; m < table.method_labels.size(); ++m) {
    s << std::left << std::setw(static_cast<int>(label)) << table.method_labels[m];
    for (double v : table.accuracy[m]) s << std::right << std::setw(9) << percent(v);
    s << std::right << std::setw(9) << percent(demo_table_average(table, m)) << "\n";
  }
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
    for (double v : table.accuracy[m]) s << " " << percent(v) << " |";
    s << " " << percent(demo_table_average(table, m)) << " |\n";
  }
  return s.str();
}

nlohmann::json demo_table_json(const DemoTable& table) {
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json methods = nlohmann::json::array();
  for (size_t m = 0; m < table.method_keys.size(); ++m) {
    nlohmann::json acc = nlohmann::json::object();
    for (size_t t = 0; t < table.tasks.size(); ++t) acc[table.tasks[t]] = number(table.accuracy[m][t]);
    methods.push_back({{"key", table.method_keys[m]},
                       {"label", table.method_labels[m]},
                       {"accuracy_percent", acc},
                       {"average_percent", number(demo_table_average(table, m))}});
  }
  return {{"tasks", table.tasks}, {"methods", methods}};
}

// One panel per task and one for the average, all on the same accuracy axis (0 to the
// largest value, rounded up to a tick) so that panels compare by eye; method names whole.
Image demo_table_image(const DemoTable& table, size_t highlight) {
  double top = 0;
  for (size_t m = 0; m < table.method_labels.size(); ++m) {
    for (double v : table.accuracy[m]) {
      if (std::isfinite(v)) top = std::max(top, v);
    }
  }
  const auto ticks = plot_ticks(0, std::max(top, 1.0), 4);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  const double hi = ticks.empty() ? 1.0 : (ticks.back() < top ? ticks.back() + step : ticks.back());
  std::vector<Image> panels;
  for (size_t t = 0; t <= table.tasks.size(); ++t) {
    BarChart chart;
    chart.title = t < table.tasks.size() ? "task " + table.tasks[t] : std::string("average");
    chart.value_label = "test accuracy (%)";
    chart.labels = table.method_labels;
    chart.width = 420;
    chart.lo = 0;
    chart.hi = hi;
    chart.highlight_label = highlight < table.method_labels.size() ? table.method_labels[highlight] : "";
    for (size_t m = 0; m < table.method_labels.size(); ++m) {
      chart.values.push_back(t < table.tasks.size() ? table.accuracy[m][t] : demo_table_average(table, m));
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
