// kmoe's entry point: MPI up, options parsed, one subcommand run, MPI down. Every error
// ends here as one message: a usage error exits 2 (printed once, by rank 0, since every
// rank parses the same arguments); any other error names its rank and, when other ranks
// exist, ends the whole job through MPI_Abort so that nobody waits in a collective.
#include <cstdlib>
#include <exception>
#include <iostream>

#include "data/store/artifact.h"
#include "launcher/cli.h"
#include "launcher/commands.h"
#include "runtime/cpu_env.h"
#include "runtime/log.h"
#include "runtime/mpi_world.h"
#include "runtime/version.h"

int main(int argc, char** argv) {
  using namespace kmoe;
  cpu_env_reexec(argv);  // before MPI: see runtime/cpu_env.h
  MpiWorld* world = nullptr;
  try {
    world = &mpi_world_init(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "kmoe: error: cannot start MPI: " << e.what() << "\n";
    return 1;
  }
  const auto table = commands_table();
  int code = 0;
  try {
    ParsedCommand cmd = cli_parse(table, std::vector<std::string>(argv + 1, argv + argc));
    if (cmd.version) {
      if (world->is_root()) std::cout << "kmoe " << kmoe_version() << " (git " << git_revision() << ")\n";
    } else if (cmd.help) {
      if (world->is_root()) std::cout << cmd.help_text;
    } else {
      LogOptions log;
      log.all_ranks = cmd.vm["log-all-ranks"].as<bool>();
      log.level = log_level_parse(cmd.vm["log-level"].as<std::string>());
      log_init(world->rank, log);
      code = cmd.command->run(cmd.vm);
    }
  } catch (const UsageError& e) {
    // The help to read is the subcommand's, when the error is in a subcommand's options.
    std::string help = "kmoe --help";
    for (const auto& sub : table) {
      if (argc > 1 && sub.name == argv[1]) help = "kmoe " + sub.name + " --help";
    }
    if (world->is_root()) std::cerr << "kmoe: " << e.what() << "\nRun '" << help << "' for usage.\n";
    code = 2;
  } catch (const std::exception& e) {
    std::cerr << "kmoe: error on rank " << world->rank << " of " << world->size << " ("
              << world->host_names[world->node_index] << "): " << e.what() << std::endl;
    if (world->size > 1) mpi_world_abort(1);
    code = 1;
  }
  if (code != 0 && artifact_io_failed()) {
    // HDF5 would try to close the failed file again inside MPI_Finalize and crash there.
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(code);
  }
  mpi_world_finalize();
  return code;
}
