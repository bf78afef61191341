// The mixture of LoRA experts in an artifact (moe.h5, written by `kmoe train --mode moe`),
// and the experts of a new mixture from PEFT folders. Everything sits under /moe/ so the
// trainer can add /metrics and /router_load beside it: /moe/keys ("layers.3.q_proj"),
// /moe/expert_names, per key /moe/<key>/router [N, in], /moe/<key>/lora_A [N, r, in] and
// /moe/<key>/lora_B [N, out, r]; attributes on /moe: top_k, aux_loss_coef, train_experts,
// expert_dropout, r, and as JSON text expert_alpha, expert_use_rslora, target_modules and
// layers. These attributes are the whole configuration: h5py users read what moe_read reads.
#pragma once

#include <string>
#include <vector>

#include "data/store/artifact.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/moe_lora.h"

namespace kmoe {

// Collective over the writer's communicator; rank 0's tensors are written (every rank holds
// the same mixture after a data-parallel step).
void moe_write(ArtifactWriter& w, const MoeLora& moe);
// Rebuilds the mixture (float32, on the CPU) from `path`. Errors name the file and the
// missing or misshaped tensor or attribute; experts that do not fit `base` are refused as in
// moe_experts_validate.
MoeLora moe_read(const std::string& path, const ModelConfig& base);
// Loads each PEFT folder (named after its last path component) and checks that they can
// form a mixture over `base` (moe_experts_validate's messages).
std::vector<LoraAdapter> moe_load_experts(const std::vector<std::string>& adapter_dirs, const ModelConfig& base);

}  // namespace kmoe
