"""The optimiser's parameter groups: which parameters get weight decay, and the head's learning rate.

No weight decay on biases and on the weights of normalisation layers, decided by *module type*, not
by parameter name: GPT-2 calls its LayerNorms ``ln_1``, ``ln_2``, ``ln_f`` (no "norm" in the name),
RoBERTa ``LayerNorm``, Llama ``input_layernorm`` / ``norm`` (``LlamaRMSNorm``), and an adapter's own
LayerNorm is called whatever its method calls it. A norm is a torch normalisation module
(LayerNorm, GroupNorm, RMSNorm, BatchNorm*/InstanceNorm*) or any module whose class name ends in
``LayerNorm`` or ``RMSNorm`` (the model libraries' own). A bias is a parameter registered under the
name ``bias``. Everything else that trains is decayed, the methods' own parameters included (HUT's
scales too: AdamW pulls them towards 0, see docs/paper-experiments.md).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import torch.nn as nn

from hut.methods.base import is_head

_TORCH_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase,
                nn.modules.instancenorm._InstanceNorm)
_NORM_NAME = re.compile(r"(LayerNorm|RMSNorm)$")


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, _TORCH_NORMS) or bool(_NORM_NAME.search(type(module).__name__))


def no_decay_names(model: nn.Module) -> set[str]:
    """Full names of the parameters that get no weight decay: biases and normalisation weights."""
    out: set[str] = set()
    for mname, module in model.named_modules():
        norm = is_norm(module)
        for pname, _ in module.named_parameters(recurse=False):
            if norm or pname == "bias":
                out.add(f"{mname}.{pname}" if mname else pname)
    return out


def param_groups(model: nn.Module, weight_decay: float, lr: float, head_lr: float | None = None,
                 head_prefixes: Sequence[str] = ()) -> list[dict[str, Any]]:
    """AdamW groups of the trainable parameters: (decay or not) × (task head with ``head_lr`` or not)."""
    skip = no_decay_names(model)
    groups: dict[tuple[bool, bool], list] = {}
    for n, p in model.named_parameters():  # shared (tied) tensors once, under their first name
        if not p.requires_grad:
            continue
        head = head_lr is not None and is_head(n, head_prefixes)
        groups.setdefault((n in skip, head), []).append(p)
    return [{"params": ps, "weight_decay": 0.0 if nd else float(weight_decay), "lr": float(head_lr if head else lr)}
            for (nd, head), ps in sorted(groups.items())]

