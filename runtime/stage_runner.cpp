// See stage_runner.h. Only rank 0 reads inputs for hashing and checks the old artifact;
// the verdict is broadcast so that every rank takes the same branch.
#include "runtime/stage_runner.h"

#include <filesystem>

#include "data/store/content_hash.h"
#include "runtime/log.h"
#include "runtime/output_guard.h"
#include "runtime/version.h"

namespace kmoe {

namespace {

std::vector<std::string> stage_outputs(const StageSpec& spec) {
  std::vector<std::string> out{spec.folder.empty() ? spec.output : spec.folder};
  out.insert(out.end(), spec.extra_files.begin(), spec.extra_files.end());
  return out;
}

}  // namespace

Provenance stage_provenance(const MpiWorld& world, const StageSpec& spec) {
  Provenance p;
  p.stage = spec.stage;
  p.kmoe_version = kmoe_version();
  p.git_revision = git_revision();
  p.options_json = spec.options.dump();  // nlohmann::json objects keep keys sorted: canonical
  p.world_size = world.size;
  p.start_time = mpi_bcast_string(world, utc_now_iso8601());
  // Hash on rank 0; an unreadable input becomes the same error on every rank.
  nlohmann::json hashes = nlohmann::json::array();
  std::string error;
  if (world.is_root()) {
    try {
      for (const auto& [role, path] : spec.inputs) hashes.push_back({role, path, content_hash(path)});
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  error = mpi_bcast_string(world, error);
  if (!error.empty()) throw std::runtime_error(spec.stage + ": " + error);
  hashes = nlohmann::json::parse(mpi_bcast_string(world, hashes.dump()));
  for (const auto& h : hashes) p.inputs.push_back({h[0], h[1], h[2]});
  return p;
}

StageOutcome stage_run(const MpiWorld& world, const StageSpec& spec,
                       const std::function<void(const Provenance&)>& body) {
  // Rank 0 holds the lock until the stage is over; a refusal becomes the same error on every rank.
  OutputLock lock;
  std::string refusal;
  if (world.is_root()) {
    try {
      lock = OutputLock(spec.folder.empty() ? spec.output : spec.folder);
      output_check({spec.stage, spec.output, spec.folder, spec.extra_files}, spec.inputs);
    } catch (const std::exception& e) {
      refusal = e.what();
    }
  }
  refusal = mpi_bcast_string(world, refusal);
  if (!refusal.empty()) throw std::runtime_error(spec.stage + ": " + refusal);

  const Provenance provenance = stage_provenance(world, spec);
  std::string verdict;
  if (world.is_root()) {
    const ArtifactStatus status = artifact_check(spec.output, provenance);
    verdict = status.complete ? "complete" : status.reason;
    if (status.complete) {
      for (const auto& f : spec.extra_files)
        if (!std::filesystem::exists(f)) verdict = f + " is missing";
    }
  }
  verdict = mpi_bcast_string(world, verdict);
  if (verdict == "complete" && !spec.force) {
    log_info(spec.stage, ": ", spec.output, " is complete for these inputs and options; skipping");
    return {true, "complete", 0, stage_outputs(spec)};
  }
  const std::string reason = verdict == "complete" ? "forced" : verdict;
  log_info(spec.stage, ": writing ", spec.output, " (", reason, ")");
  body(provenance);
  return {false, reason, 0, stage_outputs(spec)};
}

}  // namespace kmoe
