// The subcommand table and option parsing. Options come from three places, highest
// precedence first: the command line, the `[subcommand]` section of the --config INI file,
// the INI file's top-level keys. Top-level keys that belong to other subcommands are
// ignored so that one file can configure a whole pipeline; keys no subcommand knows are
// errors. A multi-value option (a list of files) takes blank-separated values in the file.
// Any usage error is a UsageError, which main() turns into exit code 2.
// This is the only place that reads command lines and INI files: each subcommand's
// `launcher/commands/NAME.cpp` turns the parsed options into the stage's options struct
// (defaults taken from the struct) and calls the stage function.
#pragma once

#include <boost/program_options.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "launcher/ini.h"
#include "runtime/stage_runner.h"  // UsageError, StageOutcome

namespace kmoe {

namespace po = boost::program_options;

struct Subcommand {
  std::string name;
  std::string summary;  // its first line is the entry in `kmoe --help`; all of it heads `kmoe NAME --help`
  // Adds the subcommand's own options; the global ones (--help, --config, logging) are
  // added by the parser.
  std::function<void(po::options_description&, po::positional_options_description&)> add_options;
  std::function<int(const po::variables_map&)> run;
};

struct ParsedCommand {
  const Subcommand* command = nullptr;  // null for `kmoe --help` / `kmoe --version`
  po::variables_map vm;
  bool help = false;     // print `help_text` and exit 0
  bool version = false;  // print the version and exit 0
  std::string help_text;
};

// args excludes the program name. Throws UsageError for unknown subcommands or options,
// malformed values, and bad config files (naming file and line).
ParsedCommand cli_parse(const std::vector<Subcommand>& table, const std::vector<std::string>& args);

// The options of subcommand `name` from the INI file alone (its [name] section and the top
// level), as `kmoe run` reads each stage's: no command line, and the required options in
// `supplied` (the pipeline's wiring: outputs, inputs made by earlier stages) are not looked
// for. Throws UsageError naming the file and line, or the missing option.
// `section` (one of kConfigSectionVariants) is read instead of [name] when given.
po::variables_map cli_parse_config(const std::vector<Subcommand>& table, const std::string& name,
                                   const std::string& config, const std::vector<std::string>& supplied,
                                   const std::string& section = "");

// Config sections beyond the subcommands' own: [train.prompt], the options of `kmoe run`'s
// soft-prompt stage (a `kmoe train --mode prompt` run). Other commands ignore them.
inline constexpr const char* kConfigSectionVariants[] = {"train.prompt", "eval.panda"};

// Sets `field` from option `name` when the option has a value (given or defaulted).
template <typename T>
void cli_get(const po::variables_map& vm, const char* name, T& field) {
  if (vm.count(name)) field = vm[name].as<T>();
}

// A double option with default `def`, printed in --help with 6 significant digits
// ("5e-05", "0.9"), not the 17 that Boost's default lexical cast writes.
po::typed_value<double>* cli_double(double def);

// The exit status of a subcommand that ran a stage.
inline int stage_exit(const StageOutcome& outcome) {
  return outcome.exit_code;
}

std::string cli_program_help(const std::vector<Subcommand>& table);

}  // namespace kmoe
