// The INI reader of --config files: `key = value` lines under optional `[section]` headers,
// # and ; comments. Torch-, MPI- and Boost-free, so the fuzz target builds it alone
// (tests/fuzz/text_formats_fuzz.cpp); the CLI layer (cli.h) gives the entries their meaning.
#pragma once

#include <string>
#include <vector>

namespace kmoe {

// One INI entry: `key = value` under an optional `[section]`.
struct IniEntry {
  std::string section;  // "" at top level
  std::string key, value;
  int line = 0;
};
// Parses FILE; throws UsageError "FILE:LINE: ..." for lines that are neither a section,
// a key = value pair, a comment (# or ;) nor blank, for a key set twice in one section, and
// for a FILE that is a folder or cannot be read. A UTF-8 byte-order mark is skipped.
std::vector<IniEntry> ini_parse(const std::string& path);

}  // namespace kmoe
