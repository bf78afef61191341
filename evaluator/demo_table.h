// The table `kmoe demo` prints (METHOD.md §1.5, the paper's Table 1 in miniature): one row per
// method, one column per target task, accuracy in % (the mean over the K-shot draws, with its
// sample standard deviation when there are several), and the average over the tasks; then the
// full method's differences from each baseline with paired-bootstrap 95% intervals over the
// test examples and, with several draws, with t intervals over the draws. As text
// for the terminal, as Markdown for DIR/demo.md, as JSON for DIR/demo_results.json and as a
// PNG of bar charts with +-sd whiskers (one panel per task and one for the average).
#pragma once

#include <nlohmann/json.hpp>

#include "evaluator/png_plot.h"

#include <string>
#include <vector>

namespace kmoe {

// A difference in percentage points with its 95% interval.
struct DemoInterval {
  double mean = 0, lo = 0, hi = 0;
};

struct DemoTable {
  std::vector<std::string> tasks;             // columns
  std::vector<std::string> method_keys;       // rows: "base", "random_moe", ...
  std::vector<std::string> method_labels;     // rows as printed
  std::vector<std::vector<double>> accuracy;  // [method][task], in %, mean over draws, NaN when missing
  // [method][task]: sample standard deviation over the draws; empty with one draw.
  std::vector<std::vector<double>> spread;
  std::vector<double> average_spread;  // [method]: sd over draws of the task average; empty with one draw
  int64_t draws = 1;
  std::string reference_label = "full method";  // the row the differences start from
  std::string metric = "test accuracy (%)";      // the plot's axis
  std::string over = "draws";                    // what the sd is over
  std::string examples = "test examples";        // what the intervals resample
  // Differences "reference - baseline" (rows of `difference_labels`), [baseline][task], the
  // last entry the average over tasks (NaN where not computed); empty when not computed.
  std::vector<std::string> difference_labels;
  std::vector<std::vector<DemoInterval>> differences;
  // The same differences with `draw_t_interval`'s intervals, [baseline][task + average];
  // empty with one draw.
  std::vector<std::vector<DemoInterval>> draw_differences;
  // Lines printed under the table (text, Markdown) and kept in its JSON ("notes"): what a
  // reader must know to read a row, e.g. that two rows are one model.
  std::vector<std::string> notes;
};

// The mean over the tasks of row `method` (NaN if any task is missing).
double demo_table_average(const DemoTable& table, size_t method);

// Sample standard deviation (n - 1); NaN for fewer than two values or a non-finite one.
double sample_sd(const std::vector<double>& values);

// Per-example outcomes of one method on one task: [draw][example], 1 correct, 0 not; every
// draw is graded on the same test examples, in the same order.
using DrawOutcomes = std::vector<std::vector<double>>;

// Paired bootstrap of (a - b) in percentage points. `a[t]` and `b[t]` are task t's outcomes of
// the two methods. Each resample draws each task's test examples with replacement (one draw of
// indices for both methods and every draw, so the pairing by example is kept) and takes the
// mean over draws and examples; the interval is the 2.5th and 97.5th percentile over
// `resamples` resamples from `seed`. Returns one interval per task and, last, one for the mean
// over tasks (each task resampled independently). Throws std::invalid_argument when the shapes
// of a and b differ.
std::vector<DemoInterval> paired_bootstrap(const std::vector<DrawOutcomes>& a, const std::vector<DrawOutcomes>& b,
                                           int64_t resamples, uint64_t seed);

// Two-sided 95% quantile of Student's t with `df` >= 1 degrees of freedom (12.706 for 1,
// 4.303 for 2, ... 1.960 in the limit); exact to 3 decimals. Throws for df < 1.
double student_t975(int64_t df);

// (a - b) in percentage points over the draws: each draw's accuracy difference, their mean and
// the 95% t interval mean +- t975(n - 1) * sd / sqrt(n) over the n draws, per task and, last,
// for the mean over tasks (the per-draw differences averaged over tasks, so every task needs
// the same number of draws). Unlike `paired_bootstrap`, which holds the trained models fixed
// and resamples the test examples, this sees how much the difference moves between K-shot
// draws and their trainings; with n = 3 it is wide. lo = hi = NaN with one draw. Throws
// std::invalid_argument when the shapes of a and b differ.
std::vector<DemoInterval> draw_t_interval(const std::vector<DrawOutcomes>& a, const std::vector<DrawOutcomes>& b);

std::string demo_table_text(const DemoTable& table);
std::string demo_table_markdown(const DemoTable& table);
nlohmann::json demo_table_json(const DemoTable& table);
// One bar chart per task and one for the average, side by side, on one shared accuracy
// axis; `highlight` is a row index (drawn in the highlight colour, named in a legend).
Image demo_table_image(const DemoTable& table, size_t highlight);
void demo_table_png(const DemoTable& table, const std::string& path, size_t highlight);

}  // namespace kmoe
