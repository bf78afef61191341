// The run report: RUN_DIR/report.md with tables and PNG plots next to it, made from
// whatever of the run's artifacts exist (scores.h5, experts.h5, data_selection.h5, moe.h5,
// eval.h5). It only reads artifacts, so it can be rerun at any time; a section whose
// artifact is missing is replaced by one line saying so, and its stale plot is removed so
// that report.md and the PNGs beside it always describe the same artifacts.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/mpi_world.h"
#include "runtime/stage_runner.h"

namespace kmoe {

// Serial (call it on one rank). Writes RUN_DIR/report.md, RUN_DIR/report.html (the same,
// self-contained, plots as inline SVG) and the PNG plots, each to a temporary name renamed
// into place, and returns their paths (report.md, report.html, then the plots). Throws naming the
// artifact and dataset when one is malformed.
std::vector<std::string> report_write(const std::string& run_dir);

// Writes PATH.tmp and renames it onto PATH; returns PATH. Throws when it cannot be written.
std::string report_text_commit(const std::filesystem::path& path, const std::string& text);

// `kmoe report RUN_DIR` or `kmoe report --compare SOURCE... --output DIR`: the options as the
// user gives them.
struct ReportOptions {
  std::string run_dir;               // the run directory holding the artifacts
  std::vector<std::string> compare;  // or: runs to compare (evaluator/report_compare.h)
  std::string output;                // with --compare: where compare.md/json/png go
  std::string reference;             // with --compare: the row the others are compared with
};
// Collective: rank 0 writes the report (or the comparison), every rank returns the same
// outcome (never skipped; outputs: the files written).
StageOutcome report_stage(const MpiWorld& world, const ReportOptions& options);

}  // namespace kmoe
