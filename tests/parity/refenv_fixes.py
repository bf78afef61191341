"""Makes the reference environment (build/refenv: Debian's torch 1.13 on Python 3.11 with
transformers 4.46) usable for what users run in it; setup.sh installs it as a .pth hook.

torch 1.13's torch.distributed.fsdp does not import on Python 3.11 (a dataclass in
torch/distributed/_shard/sharded_tensor/metadata.py has a default that Python 3.11 calls
mutable), and transformers' generate() imports it to ask whether the model is FSDP-wrapped.
No model can be FSDP-wrapped there, so on torch 1.x with Python >= 3.11 an empty module
holding the class transformers checks against takes its place. Nothing else is changed.
"""
import importlib.abc
import importlib.machinery
import sys
import types


class _FsdpStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    name = "torch.distributed.fsdp"

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name or sys.version_info < (3, 11):
            return None
        torch = sys.modules.get("torch")  # imported already: fsdp's parent packages come first
        if torch is None or not getattr(torch, "__version__", "").startswith("1."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return types.ModuleType(spec.name)

    def exec_module(self, module):
        class FullyShardedDataParallel:  # never instantiated: isinstance() is always False
            pass

        module.FullyShardedDataParallel = FullyShardedDataParallel
        module.__doc__ = "stand-in: torch 1.13's fsdp does not import on Python 3.11 (tests/parity/refenv_fixes.py)"


# Decided at import time of the module, not here: when this .pth hook runs, the system
# site-packages (Debian's torch) are not on sys.path yet.
sys.meta_path.insert(0, _FsdpStandIn())
