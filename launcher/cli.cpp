// See cli.h. The INI file is parsed by hand rather than with po::parse_config_file so
// that every error can name the file and line, which Boost's parser does not report.
#include "launcher/cli.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace kmoe {

po::typed_value<double>* cli_double(double def) {
  std::ostringstream text;
  text << def;  // default precision: 6 significant digits
  return po::value<double>()->default_value(def, text.str());
}

namespace {

void add_global_options(po::options_description& desc) {
  desc.add_options()("help,h", "show this help and exit")("config", po::value<std::string>()->value_name("FILE"),
                                                          "INI file with options; command-line flags override it")(
      "log-all-ranks", po::bool_switch(), "log from every rank, not only rank 0")(
      "log-level", po::value<std::string>()->default_value("info")->value_name("LEVEL"), "debug, info, warn or error");
}

std::string valid_option_list(const po::options_description& desc) {
  std::string out;
  for (const auto& opt : desc.options()) {
    if (opt->long_name().empty()) continue;
    if (!out.empty()) out += ", ";
    out += "--" + opt->long_name();
  }
  return out;
}

std::string subcommand_list(const std::vector<Subcommand>& table) {
  std::string out;
  for (const auto& s : table) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

struct CommandDesc {
  po::options_description desc;
  po::positional_options_description positional;
};

void build_desc(const Subcommand& sub, CommandDesc& cd) {
  po::options_description own(sub.name + " options");
  if (sub.add_options) sub.add_options(own, cd.positional);
  po::options_description global("common options");
  add_global_options(global);
  cd.desc.add(own).add(global);
}

std::string command_help(const Subcommand& sub, const CommandDesc& cd) {
  std::ostringstream s;
  s << "Usage: kmoe " << sub.name << " [options]";
  // Positional arguments once each, upper case; a repeating last one as NAME...
  const unsigned n = cd.positional.max_total_count();
  std::string previous;
  for (unsigned i = 0; i < n; ++i) {
    std::string name = cd.positional.name_for_position(i);
    if (name == previous) {
      s << "...";
      break;
    }
    previous = name;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    s << " " << name;
  }
  s << "\n\n" << sub.summary << "\n\n" << cd.desc;
  return s.str();
}

// Stores config entries into vm; entries already set on the command line keep their value
// (po::store never overwrites a value that was not defaulted), and the [subcommand]
// section (or `section`, one of kConfigSectionVariants) is stored before the top level so
// that it wins.
void store_config(const std::vector<Subcommand>& table, const Subcommand& sub, const po::options_description& desc,
                  const std::string& path, po::variables_map& vm, const std::string& section = "") {
  const auto entries = ini_parse(path);
  const auto where = [&](const IniEntry& e) { return path + ":" + std::to_string(e.line) + ": "; };
  const auto known_by_some_subcommand = [&](const std::string& key) {
    for (const auto& other : table) {
      CommandDesc ocd;
      build_desc(other, ocd);
      if (ocd.desc.find_nothrow(key, false)) return true;
    }
    return false;
  };
  for (const auto& e : entries) {
    bool known = e.section.empty();
    for (const auto& s : table) known = known || s.name == e.section;
    for (const char* variant : kConfigSectionVariants) known = known || e.section == variant;
    if (!known) {
      std::string valid = subcommand_list(table);
      for (const char* variant : kConfigSectionVariants) valid.append(", ").append(variant);
      throw UsageError(where(e) + "unknown section [" + e.section + "] (valid: " + valid + ")");
    }
  }
  const auto apply = [&](const IniEntry& e) {
    if (e.key == "config" || e.key == "help")
      throw UsageError(where(e) + "'" + e.key + "' cannot be set in a config file");
    const po::option_description* opt = desc.find_nothrow(e.key, false);
    if (!opt) {
      if (e.section.empty() && known_by_some_subcommand(e.key)) return;  // meant for another stage
      throw UsageError(where(e) + "unknown option '" + e.key + "' for 'kmoe " + sub.name +
                       "' (valid: " + valid_option_list(desc) + ")");
    }
    // A multi-value option (a list of files) takes its values separated by blanks.
    std::vector<std::string> tokens;
    if (opt->semantic()->max_tokens() > 1) {
      std::istringstream in(e.value);
      for (std::string t; in >> t;) tokens.push_back(t);
    } else {
      tokens.push_back(e.value);
    }
    po::parsed_options parsed(&desc);
    parsed.options.emplace_back(e.key, tokens);
    try {
      po::store(parsed, vm);
    } catch (const po::error& err) {
      throw UsageError(where(e) + err.what());
    }
  };
  const std::string own = section.empty() ? sub.name : section;
  for (const auto& e : entries)
    if (e.section == own) apply(e);
  for (const auto& e : entries)
    if (e.section.empty()) apply(e);
}

}  // namespace

std::string cli_program_help(const std::vector<Subcommand>& table) {
  std::ostringstream s;
  s << "Usage: kmoe <subcommand> [options]\n"
       "       kmoe --version | --help\n\n"
       "kmoe: K-shot expert building for open LLMs, distributed over MPI ranks and GPUs.\n\n"
       "Subcommands:\n";
  for (const auto& sub : table) {
    // The summary's first line; the rest is in `kmoe SUB --help`.
    const std::string brief = sub.summary.substr(0, sub.summary.find('\n'));
    s << "  " << sub.name << std::string(sub.name.size() < 16 ? 16 - sub.name.size() : 1, ' ') << brief << "\n";
  }
  s << "\nRun 'kmoe <subcommand> --help' for the options of one subcommand.\n";
  return s.str();
}

namespace {

// No option of kmoe means anything as NaN or infinity (a learning rate, a temperature, tau).
void check_finite(const std::string& who, const po::variables_map& vm) {
  for (const auto& [name, value] : vm) {
    if (value.value().type() == typeid(double) && !std::isfinite(value.as<double>()))
      throw UsageError(who + ": --" + name + " must be a finite number, not " + std::to_string(value.as<double>()));
  }
}

}  // namespace

po::variables_map cli_parse_config(const std::vector<Subcommand>& table, const std::string& name,
                                   const std::string& config, const std::vector<std::string>& supplied,
                                   const std::string& section) {
  const Subcommand* sub = nullptr;
  for (const auto& s : table)
    if (s.name == name) sub = &s;
  if (!sub) throw UsageError("unknown subcommand '" + name + "' (valid: " + subcommand_list(table) + ")");
  CommandDesc cd;
  build_desc(*sub, cd);
  po::variables_map vm;
  po::store(po::parsed_options(&cd.desc), vm);  // the defaults
  store_config(table, *sub, cd.desc, config, vm, section);
  const std::string shown = section.empty() ? name : section;
  for (const auto& opt : cd.desc.options()) {
    const std::string& key = opt->long_name();
    if (!opt->semantic()->is_required() || vm.count(key)) continue;
    if (std::find(supplied.begin(), supplied.end(), key) != supplied.end()) continue;
    throw UsageError(config + ": [" + shown + "] needs '" + key + "' (in that section or at the top level)");
  }
  check_finite(config + ": [" + shown + "]", vm);
  return vm;
}

ParsedCommand cli_parse(const std::vector<Subcommand>& table, const std::vector<std::string>& args) {
  ParsedCommand out;
  if (args.empty()) throw UsageError("no subcommand given (valid: " + subcommand_list(table) + ")");
  const std::string& first = args[0];
  if (first == "--help" || first == "-h" || first == "help") {
    out.help = true;
    out.help_text = cli_program_help(table);
    return out;
  }
  if (first == "--version") {
    out.version = true;
    return out;
  }
  for (const auto& s : table) {
    if (s.name == first) out.command = &s;
  }
  if (!out.command) {
    throw UsageError("unknown subcommand '" + first + "' (valid: " + subcommand_list(table) + ")");
  }
  const Subcommand& sub = *out.command;
  CommandDesc cd;
  build_desc(sub, cd);

  std::vector<std::string> rest(args.begin() + 1, args.end());
  try {
    auto parsed = po::command_line_parser(rest).options(cd.desc).positional(cd.positional).run();
    po::store(parsed, out.vm);
  } catch (const po::unknown_option& e) {
    throw UsageError("kmoe " + sub.name + ": unknown option '" + e.get_option_name() +
                     "' (valid: " + valid_option_list(cd.desc) + ")");
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError("kmoe " + sub.name + ": unexpected argument (valid options: " + valid_option_list(cd.desc) + ")");
  } catch (const po::error& e) {
    throw UsageError("kmoe " + sub.name + ": " + e.what());
  }
  if (out.vm.count("help")) {
    out.help = true;
    out.help_text = command_help(sub, cd);
    return out;
  }
  if (out.vm.count("config")) store_config(table, sub, cd.desc, out.vm["config"].as<std::string>(), out.vm);
  try {
    po::notify(out.vm);  // required options, notifiers
  } catch (const po::error& e) {
    throw UsageError("kmoe " + sub.name + ": " + e.what());
  }
  check_finite("kmoe " + sub.name, out.vm);
  return out;
}

}  // namespace kmoe
