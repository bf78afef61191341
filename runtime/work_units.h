// The one sharded, journalled work-unit loop of kmoe's stages (score, eval, embed): units
// [0, n) are handed out by the rank-0 WorkQueue (dynamic, every unit exactly once, rank 0
// works too), a unit already in the UnitJournal is not redone, and each unit's results are
// committed to the journal as one set of tensors by the rank that computed it. Rank 0 shows
// progress with rate and ETA. What a unit needs (the model, an adapter) is the stage's to
// load lazily inside `work`, which runs only for units still to do, so a resumed stage whose
// units are all done loads nothing.
// Determinism is the stage's: a unit's result must depend only on the unit, never on which
// rank runs it or what ran before (then the artifact does not depend on np, order or a kill).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "runtime/mpi_world.h"
#include "runtime/unit_journal.h"

namespace kmoe {

using UnitTensors = std::map<std::string, at::Tensor>;

struct WorkUnitsSpec {
  std::string label;  // progress line, e.g. "scoring"
  int64_t n_units = 0;
  std::string unit_name = "units";  // progress unit, e.g. "blocks"
};

// Collective. Returns when every unit is in the journal (a barrier ends it). An exception in
// `work` propagates on that rank (main() then ends the job).
// Tests: KMOE_TEST_KILL_AFTER_UNITS=N makes a rank raise SIGKILL right after its N-th commit:
// a real kill in the middle of a stage, for the resume tests.
void work_units_run(const MpiWorld& world, UnitJournal& journal, const WorkUnitsSpec& spec,
                    const std::function<UnitTensors(int64_t unit)>& work);

}  // namespace kmoe
