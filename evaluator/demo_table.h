// The table `kmoe demo` prints (METHOD.md §1.5, the paper's Table 1 in miniature): one row per
// method, one column per target task, test accuracy in %, and the average over the tasks. As
// text for the terminal, as Markdown for DIR/demo.md, as JSON for DIR/demo_results.json and as
// a PNG of bar charts (one panel per task and one for the average).
#pragma once

#include <nlohmann/json.hpp>

#include "evaluator/png_plot.h"

#include <string>
#include <vector>

namespace kmoe {

struct DemoTable {
  std::vector<std::string> tasks;             // columns
  std::vector<std::string> method_keys;       // rows: "base", "random_moe", ...
  std::vector<std::string> method_labels;     // rows as printed
  std::vector<std::vector<double>> accuracy;  // [method][task], in %, NaN when missing
};

// The mean over the tasks of row `method` (NaN if any task is missing).
double demo_table_average(const DemoTable& table, size_t method);

std::string demo_table_text(const DemoTable& table);
std::string demo_table_markdown(const DemoTable& table);
nlohmann::json demo_table_json(const DemoTable& table);
// One bar chart per task and one for the average, side by side, on one shared accuracy
// axis; `highlight` is a row index (drawn in the highlight colour, named in a legend).
Image demo_table_image(const DemoTable& table, size_t highlight);
void demo_table_png(const DemoTable& table, const std::string& path, size_t highlight);

}  // namespace kmoe
