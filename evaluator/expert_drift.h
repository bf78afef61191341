// How far training moved each expert of a mixture from the PEFT adapter it started from
// (METHOD.md §1.3: the experts are initialised from the chosen bank adapters and trained
// with the routers). Read from moe.h5 and the adapter folders its provenance names
// (inputs adapter/0 .. adapter/N-1, in expert order). Per expert, over all adapted modules,
// with ΔW = B·A the trained update and ΔW0 = B0·A0 the adapter's (the LoRA scale is the
// same for both and cancels):
//   norm_ratio = ‖ΔW‖ / ‖ΔW0‖, change = ‖ΔW − ΔW0‖ / ‖ΔW0‖, cosine = ⟨ΔW, ΔW0⟩ / (‖ΔW‖ ‖ΔW0‖)
// (Frobenius norms summed over modules). cosine² is the share of the trained update that
// lies along the adapter's; a change well above 1 with a small cosine means training
// replaced what the adapter had learned rather than refining it.
#pragma once

#include <string>
#include <vector>

namespace kmoe {

struct ExpertDrift {
  std::string expert;       // the expert's name in moe.h5
  std::string adapter_dir;  // the folder it was initialised from (as recorded)
  double norm_ratio = 0, change = 0, cosine = 0;  // NaN when the adapter's update is zero
};

struct ExpertDriftResult {
  std::vector<ExpertDrift> experts;  // in moe.h5's expert order; empty when `unavailable`
  std::string unavailable;           // why drift cannot be measured, in words; empty if it can
};

// Never throws for a missing or changed adapter folder (that is `unavailable`: "adapter/1
// (/x/bank/a) no longer exists", "... has changed since training"); throws naming the file
// and tensor for a malformed moe.h5 or adapter tensor that does not match the expert's shape.
ExpertDriftResult expert_drift(const std::string& moe_path);

}  // namespace kmoe
