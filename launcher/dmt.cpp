// See dmt.h. Each run is train_stage with its options struct; skipping and resuming are the
// train stage's own (provenance and checkpoints), so this file only wires data and starts.
#include "launcher/dmt.h"

#include <mpi.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/text/sft_data.h"
#include "runtime/log.h"

namespace kmoe {

namespace {

namespace fs = std::filesystem;

struct DmtRun {
  std::string name, stage;  // stage: "1" (from the base) or "2" (from special/)
  std::vector<std::string> data;
};

// FILE:k for every file; FILE alone when k is 1.
std::vector<std::string> with_share(const std::vector<std::string>& files, const std::string& k) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(k == "1" ? f : f + ":" + k);
  return out;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

std::string dmt_run_name(const std::string& k) {
  std::string name = "dmt-k" + k;
  for (auto& c : name)
    if (c == '/') c = '_';
  return name;
}

StageOutcome dmt_stage(const MpiWorld& world, const DmtOptions& o) {
  if (o.mode != "lora" && o.mode != "full")
    throw UsageError("kmoe dmt: --mode must be lora or full, not '" + o.mode + "'");
  if (o.model.empty() || o.special.empty() || o.general.empty() || o.output_dir.empty())
    throw UsageError("kmoe dmt: --model, --special, --general and --output-dir are required");
  for (const auto& k : o.k) {
    double share = 0;
    try {
      share = sft_source_parse("x:" + k).fraction;
    } catch (const std::exception& e) {
      throw UsageError("kmoe dmt: --k " + k + ": not a share a/b or a decimal in (0, 1]");
    }
    if (!(share > 0 && share <= 1)) throw UsageError("kmoe dmt: --k " + k + ": not in (0, 1]");
  }
  std::vector<DmtRun> runs = {{"special", "1", o.special}};
  if (o.baselines) {
    runs.push_back({"general", "1", o.general});
    runs.push_back({"mixed", "1", concat(o.special, o.general)});
    runs.push_back({"sequential", "2", o.general});
  }
  for (const auto& k : o.k) runs.push_back({dmt_run_name(k), "2", concat(o.general, with_share(o.special, k))});

  if (world.is_root()) fs::create_directories(o.output_dir);
  mpi_check(MPI_Barrier(world.comm), "dmt: barrier");
  const std::string stage1 = (fs::path(o.output_dir) / "special").string();
  nlohmann::json listing = nlohmann::json::array();
  for (const auto& run : runs) {
    TrainOptions t;
    t.mode = o.mode;
    t.model = o.model;
    t.data = run.data;
    t.output = (fs::path(o.output_dir) / run.name).string();
    t.force = o.force;
    t.training = o.training;
    if (run.stage == "2") {
      if (o.mode == "lora")
        t.init_adapter = stage1;
      else
        t.model = stage1;  // the HF folder of stage 1
    }
    log_info("dmt: ", run.name, " (stage ", run.stage, "): ", t.data.size(), " data file(s)");
    const StageOutcome outcome = train_stage(world, t);
    if (outcome.exit_code != 0) return outcome;  // checkpointed on a signal: run again to resume
    listing.push_back({{"name", run.name},
                       {"stage", run.stage},
                       {"output", t.output},
                       {"data", run.data},
                       {"starts_from", run.stage == "2" ? stage1 : o.model}});
  }
  const std::string listing_path = (fs::path(o.output_dir) / "dmt.json").string();
  if (world.is_root()) {
    const std::string partial = listing_path + ".partial";
    {
      std::ofstream out(partial);
      out << nlohmann::json{{"mode", o.mode}, {"model", o.model}, {"k", o.k}, {"runs", listing}}.dump(2) << "\n";
      out.close();
      if (!out) throw std::runtime_error(partial + ": write failed (disk full?)");
    }
    fs::rename(partial, listing_path);
  }
  mpi_check(MPI_Barrier(world.comm), "dmt: barrier");
  StageOutcome outcome;
  outcome.reason = "dmt: " + std::to_string(runs.size()) + " runs complete";
  outcome.outputs = {listing_path};
  return outcome;
}

}  // namespace kmoe
