// `kmoe report --compare`: the evaluations of several runs side by side. Each source is a run
// directory (every eval*.h5 directly in it) or an eval .h5 file, optionally named
// `LABEL=PATH`. A column is a task (eval.h5's `task`; `task@FILE` when one task was evaluated
// on different example files, e.g. validation and test); a row is a model (the eval's row
// name, `LABEL/name` for labelled sources). A row evaluated in several runs of one column
// (K-shot draws, seeds) gets the mean and the sample sd over them. A row evaluated in only one
// run of a column whose other rows have several (the base model, which no draw changes) is
// used for every run. Then the reference row minus each other row, per column and on
// average, with a paired-bootstrap 95% interval over the examples (evaluator/demo_table.h),
// where both have the same runs. Written as DIR/compare.md, compare.json and compare.png.
#pragma once

#include <string>
#include <vector>

#include "evaluator/demo_table.h"

namespace kmoe {

struct CompareOptions {
  std::vector<std::string> sources;  // [LABEL=]RUN_DIR or [LABEL=]EVAL.h5, in order
  std::string reference;             // the row others are compared with; "" = "moe" if present
  std::string output_dir;            // where compare.md, compare.json, compare.png go
};

struct CompareResult {
  DemoTable table;
  std::vector<std::string> files;  // the eval files read, in order
  size_t reference = 0;            // row index of the reference (== rows when none)
};

// Reads the sources and builds the table. Throws naming the file when a source has no
// evaluation, when two runs of one column were graded on different examples, or when the
// reference names no row.
CompareResult compare_runs(const CompareOptions& options);

// compare_runs, then writes the three files (each to a temporary name renamed into place);
// returns their paths and prints the table to stdout.
std::vector<std::string> compare_write(const CompareOptions& options);

}  // namespace kmoe
