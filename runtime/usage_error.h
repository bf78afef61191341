// The error of options that cannot run, on its own so that torch- and MPI-free readers (the
// INI reader, and the fuzz targets that build it alone) can throw it.
#pragma once

#include <stdexcept>

namespace kmoe {

// Options that cannot run (a missing input option, a malformed value, a conflict between
// two options): main() turns it into exit code 2. Stages throw it from their option checks,
// the CLI layer from parsing; every other error is a runtime failure (exit 1).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace kmoe
