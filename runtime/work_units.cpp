// See work_units.h.
#include "runtime/work_units.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <vector>

#include "runtime/progress.h"
#include "runtime/work_queue.h"

namespace kmoe {

void work_units_run(const MpiWorld& world, UnitJournal& journal, const WorkUnitsSpec& spec,
                    const std::function<UnitTensors(int64_t unit)>& work) {
  const char* kill_env = std::getenv("KMOE_TEST_KILL_AFTER_UNITS");
  const int64_t kill_after = kill_env ? std::atoll(kill_env) : -1;
  int64_t committed_here = 0;
  Progress progress(spec.label, spec.n_units, spec.unit_name, ProgressOptions{10.0, world.is_root()});
  // The units an earlier run finished count as done but not towards the rate. The queue
  // hands units out in order, so of the first h handed out, those done before are the
  // journal's units below h.
  const std::vector<int64_t> before(journal.done_units().begin(), journal.done_units().end());
  progress.resume_from(static_cast<int64_t>(before.size()));
  {
    WorkQueue queue(world, spec.n_units);
    while (const auto unit = queue.next()) {
      if (world.is_root()) {
        const int64_t h = queue.handed_out();
        const auto below = std::lower_bound(before.begin(), before.end(), h) - before.begin();
        progress.set(static_cast<int64_t>(before.size()) + h - below);
      }
      if (journal.done(*unit)) continue;
      journal.commit(*unit, work(*unit));
      if (++committed_here == kill_after) std::raise(SIGKILL);
    }
  }
  mpi_check(MPI_Barrier(world.comm), "work units: barrier");
  progress.finish();
}

}  // namespace kmoe
