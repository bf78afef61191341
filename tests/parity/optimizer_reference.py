# Adafactor references for optimizer_parity_test.cpp: transformers' Adafactor (the pinned
# version, relative_step=False, no first moment) over four steps with per-step learning rates,
# on a matrix, a vector, a 3-d tensor and a soft-prompt-shaped matrix, with parameter scaling
# and weight decay and without. Writes $KMOE_PARITY_DIR/optimizer/adafactor.safetensors:
# init/NAME, grad/STEP/NAME, lr [steps], then CASE/final/NAME for CASE in scaled, plain.
import os

import torch
from safetensors.torch import save_file
from transformers.optimization import Adafactor

OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "optimizer")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)
shapes = {"matrix": (6, 5), "vector": (7,), "cube": (2, 3, 4), "prompt": (4, 8)}
init = {k: torch.randn(s) for k, s in shapes.items()}
grads = [{k: torch.randn(s) * (0.1 + step) for k, s in shapes.items()} for step in range(4)]
lrs = [0.2, 0.1, 0.05, 0.3]
out = {f"init/{k}": v for k, v in init.items()}
out["lr"] = torch.tensor(lrs, dtype=torch.float64)
for step, g in enumerate(grads):
    out.update({f"grad/{step}/{k}": v for k, v in g.items()})
for case, kwargs in {"scaled": dict(scale_parameter=True, weight_decay=0.01),
                     "plain": dict(scale_parameter=False, weight_decay=0.0)}.items():
    params = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
    opt = Adafactor(list(params.values()), lr=lrs[0], relative_step=False, warmup_init=False, **kwargs)
    for step, g in enumerate(grads):
        for k, p in params.items():
            p.grad = g[k].clone()
        for group in opt.param_groups:
            group["lr"] = lrs[step]
        opt.step()
    out.update({f"{case}/final/{k}": p.detach().clone() for k, p in params.items()})
save_file(out, os.path.join(OUT, "adafactor.safetensors"))
print("wrote", os.path.join(OUT, "adafactor.safetensors"))
