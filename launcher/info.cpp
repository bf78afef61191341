// `kmoe info`: what this kmoe can use here. Every rank reports; rank 0 prints. It is the
// first thing to run in a new SLURM allocation (are the ranks where I think, do the GPUs
// show, is HDF5 parallel), so it reports rather than fails.
#include <ATen/Parallel.h>
#include <hdf5.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "launcher/commands.h"
#include "runtime/cpu_env.h"
#include "runtime/mpi_world.h"
#include "runtime/version.h"
#include "trainer/gpu_probe.h"

namespace kmoe {

namespace {

// CUDA's version integers (1000 * major + 10 * minor: 13000) as "13.0"; 0 (no driver, or
// no GPU to ask) as "none".
std::string cuda_version_text(int v) {
  if (v <= 0) return "none";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v ? std::string(v) : fallback;
}

nlohmann::json info_collect(const MpiWorld& world) {
  nlohmann::json j;
  j["kmoe"] = {{"version", kmoe_version()}, {"git_revision", git_revision()}};
  j["libtorch"] = {{"version", TORCH_VERSION},
                   {"cuda_available", torch::cuda::is_available()},
                   {"cuda_devices", torch::cuda::device_count()}};

  std::string comm;
  std::getline(std::ifstream("/proc/self/comm"), comm);
  j["process_name"] = comm;  // after runtime/cpu_env's re-exec: still the executable's name
  j["cpu"] = {{"threads", at::get_num_threads()},
              {"omp_wait_policy", env_or("OMP_WAIT_POLICY", "unset")},
              {"gomp_spincount", env_or("GOMP_SPINCOUNT", "unset")},
              {"bf16_instructions", cpu_has_bf16()},
              {"openblas_core", openblas_core()},  // "" : no OpenBLAS loaded
              {"openblas_coretype", env_or("OPENBLAS_CORETYPE", "unset")},
              // The core OpenBLAS chose on its own, where kmoe asked for another (runtime/cpu_env.h)
              {"openblas_core_detected", env_or("KMOE_OPENBLAS_CORE_WAS", openblas_core())},
              // false: OpenBLAS runs kernels below this CPU's (runtime/cpu_env.h's rule)
              {"openblas_kernels_fit_cpu", openblas_core_to_force(openblas_core(), cpu_flags()).empty()}};

  const GpuInfo gpu = gpu_probe();
  // Devices per node, as each node's local rank 0 sees them.
  int devices = world.local_rank == 0 ? gpu.device_count : 0;
  MPI_Allreduce(MPI_IN_PLACE, &devices, 1, MPI_INT, MPI_SUM, world.comm);
  j["cuda"] = {{"compiled", gpu.cuda_compiled},
               {"runtime_version", gpu.cuda_runtime_version},
               {"driver_version", gpu.cuda_driver_version},
               {"devices_rank0", gpu.device_count},
               {"device_names_rank0", gpu.device_names},
               {"devices_all_nodes", devices},
               {"error", gpu.cuda_error}};
  j["nccl"] = {{"compiled", gpu.nccl_compiled},
               {"version", nccl_version_string(gpu.nccl_version)},
               {"usable", gpu.nccl_compiled && gpu.device_count > 0 && torch::cuda::is_available()}};

  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi_version, &len);
  std::string mpi_lib(mpi_version, len);
  if (auto nl = mpi_lib.find_first_of(",\n"); nl != std::string::npos) mpi_lib.resize(nl);
  nlohmann::json nodes = nlohmann::json::array();
  for (int n = 0; n < world.node_count; ++n) {
    std::vector<int> ranks;
    for (int r = 0; r < world.size; ++r) {
      if (world.node_of_rank[r] == n) ranks.push_back(r);
    }
    nodes.push_back({{"host", world.host_names[n]}, {"ranks", ranks}});
  }
  j["mpi"] = {{"library", mpi_lib},
              {"world_size", world.size},
              {"node_count", world.node_count},
              {"ranks_per_node", world.ranks_per_node},
              {"nodes", nodes},
              {"thread_multiple", world.thread_level >= MPI_THREAD_MULTIPLE}};

  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
#ifdef H5_HAVE_PARALLEL
  const bool parallel = true;
#else
  const bool parallel = false;
#endif
  j["hdf5"] = {{"version", std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel)},
               {"parallel", parallel}};

  if (!env_or("SLURM_JOB_ID").empty()) {
    j["slurm"] = {{"job_id", env_or("SLURM_JOB_ID")},
                  {"nodes", env_or("SLURM_JOB_NUM_NODES", "?")},
                  {"node_list", env_or("SLURM_JOB_NODELIST", "?")},
                  {"tasks", env_or("SLURM_NTASKS", "?")},
                  {"partition", env_or("SLURM_JOB_PARTITION", "?")}};
  } else {
    j["slurm"] = nullptr;
  }
  return j;
}

void info_print(const nlohmann::json& j) {
  auto yesno = [](bool b) { return b ? "yes" : "no"; };
  std::cout << "kmoe " << j["kmoe"]["version"].get<std::string>() << " (git "
            << j["kmoe"]["git_revision"].get<std::string>() << ")\n";
  std::cout << "libtorch " << j["libtorch"]["version"].get<std::string>()
            << ", CUDA available to libtorch: " << yesno(j["libtorch"]["cuda_available"]) << "\n";
  std::cout << "CPU: " << j["cpu"]["threads"] << " libtorch threads per rank, OMP_WAIT_POLICY "
            << j["cpu"]["omp_wait_policy"].get<std::string>() << ", GOMP_SPINCOUNT "
            << j["cpu"]["gomp_spincount"].get<std::string>()
            << ", bf16 instructions (AVX512-BF16 or AMX): " << yesno(j["cpu"]["bf16_instructions"]) << "\n";
  const std::string core = j["cpu"]["openblas_core"], detected = j["cpu"]["openblas_core_detected"];
  if (core.empty()) {
    std::cout << "OpenBLAS: not loaded\n";
  } else {
    std::cout << "OpenBLAS kernels: " << core << " (OPENBLAS_CORETYPE " << j["cpu"]["openblas_coretype"].get<std::string>();
    if (detected != core) std::cout << "; detected " << detected << ", set by kmoe: runtime/cpu_env.h";
    std::cout << ")\n";
  }
  const auto& cuda = j["cuda"];
  if (cuda["compiled"]) {
    std::cout << "CUDA " << cuda_version_text(cuda["runtime_version"].get<int>()) << " (linked), driver "
              << cuda_version_text(cuda["driver_version"].get<int>())
              << ", devices on rank 0's node: " << cuda["devices_rank0"];
    if (!cuda["error"].get<std::string>().empty()) std::cout << " (" << cuda["error"].get<std::string>() << ")";
    for (const auto& name : cuda["device_names_rank0"]) std::cout << "\n  " << name.get<std::string>();
    std::cout << "\n";
  } else {
    std::cout << "CUDA: not compiled in (no CUDA toolkit at build time)\n";
  }
  std::cout << "NCCL: "
            << (j["nccl"]["compiled"] ? "linked " + j["nccl"]["version"].get<std::string>()
                                      : std::string("not compiled in"))
            << ", usable: " << yesno(j["nccl"]["usable"]) << "\n";
  const auto& mpi = j["mpi"];
  std::cout << "MPI: " << mpi["library"].get<std::string>() << "\n  world size " << mpi["world_size"] << ", "
            << mpi["node_count"] << " node(s), ranks per node:";
  for (const auto& n : mpi["ranks_per_node"]) std::cout << " " << n;
  std::cout << ", MPI_THREAD_MULTIPLE: " << yesno(mpi["thread_multiple"]) << "\n";
  for (const auto& node : mpi["nodes"]) {
    std::cout << "  " << node["host"].get<std::string>() << ": ranks";
    for (const auto& r : node["ranks"]) std::cout << " " << r;
    std::cout << "\n";
  }
  std::cout << "HDF5 " << j["hdf5"]["version"].get<std::string>() << ", parallel: " << yesno(j["hdf5"]["parallel"])
            << "\n";
  if (j["slurm"].is_null()) {
    std::cout << "SLURM: not inside a job\n";
  } else {
    const auto& s = j["slurm"];
    std::cout << "SLURM: job " << s["job_id"].get<std::string>() << ", " << s["nodes"].get<std::string>()
              << " node(s) (" << s["node_list"].get<std::string>() << "), " << s["tasks"].get<std::string>()
              << " task(s), partition " << s["partition"].get<std::string>() << "\n";
  }
}

int info_run(const po::variables_map& vm) {
  const MpiWorld& world = mpi_world();
  const nlohmann::json j = info_collect(world);
  if (world.is_root()) {
    if (vm["json"].as<bool>())
      std::cout << j.dump(2) << "\n";
    else
      info_print(j);
  }
  return 0;
}

}  // namespace

Subcommand info_subcommand() {
  return {"info", "Print kmoe's version, libtorch, CUDA/NCCL, the MPI world, HDF5 and the SLURM job",
          [](po::options_description& d, po::positional_options_description&) {
            d.add_options()("json", po::bool_switch(), "print JSON instead of text");
          },
          info_run};
}

}  // namespace kmoe
