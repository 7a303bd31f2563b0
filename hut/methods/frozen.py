"""The frozen model: no method injected, only the task head trains. The floor that costs are measured
against (``hut.flops``: Table 2's "extra"; ``hut.bench``: the step-time and memory ratios).

Not registered in ``METHODS``: it is not a fine-tuning method, and the registry-wide tests (every
method trains parameters of its own) do not apply to it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn

from hut.methods.base import Method
from hut.methods.config import MethodConfig, option


@dataclasses.dataclass(frozen=True)
class FrozenConfig(MethodConfig):
    # True: a gradient flows back through every layer to the input embeddings' output (``requires_grad``
    # set on it), what any method that adapts every layer pays (the bench's floor); False: the backward
    # pass stops where nothing trains (Table 2's floor: training the task head alone).
    grad_to_inputs: bool = option(False)


class Frozen(Method):
    name = "frozen"
    Config = FrozenConfig

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        if self.config.grad_to_inputs:
            model.get_input_embeddings().register_forward_hook(_require_grad)
        return model


def frozen(grad_to_inputs: bool = False, name: str = "frozen") -> Frozen:
    return Frozen({"name": name, "grad_to_inputs": grad_to_inputs})


def _require_grad(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor | None:
    if torch.is_grad_enabled() and isinstance(out, torch.Tensor) and not out.requires_grad:
        return out.requires_grad_(True)
    return None
