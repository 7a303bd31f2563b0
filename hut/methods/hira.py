"""HiRA (Huang et al., 2025, "HiRA: Parameter-Efficient Hadamard High-Rank Adaptation") through peft.

HiRA updates the frozen weight by a Hadamard product with a low-rank matrix, ``W' = W0 + W0 ⊙ (B·A)``
(``W0 ⊙ (1 + B·A)``), with A (r×d), B (k×r), B = 0 at init (identity at init). Like HUT it transforms W0
itself rather than adding an independent ΔW; unlike HUT, B·A has rank r, so the update ``W0 ⊙ B·A``
can have high rank. Merges exactly.

Whole modules use peft's HiRA layer (``peft.HiraConfig``, injected with ``inject_adapter_in_model`` and
the module names ``resolve_targets`` returns). peft adapts whole modules only; on GPT-2's fused
``attn.c_attn`` the q and v slices get :class:`FusedSliceHiRA` (as LoRA's ``FusedSliceLoRA``). HiRA has
no alpha scaling; the config has ``r``, ``dropout`` and ``targets``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
from peft import HiraConfig as PeftHiraConfig
from peft import PeftConfig

from hut.methods.base import METHODS, Method
from hut.methods.config import MethodConfig, option
from hut.methods.lora import FusedSliceLoRA, LoraMethod


@dataclass(frozen=True)
class HiraConfig(MethodConfig):
    r: int = option(8, minimum=1)  # LoRA's rank on the same targets (same parameter count); HiRA has no GLUE setting
    dropout: float = option(0.0, minimum=0.0, below=1.0)  # on the HiRA branch's input (peft's default 0)
    targets: list[str] = option(["q", "v"])


class FusedSliceHiRA(FusedSliceLoRA):
    """HiRA on some output blocks of a fused module: block output + x·(W0_b ⊙ B·A)ᵀ (peft cannot)."""

    def __init__(self, base: nn.Module, slices: Sequence[int], r: int, alpha: float, dropout: float):
        super().__init__(base, slices, r, float(r), dropout)  # alpha = r: no scaling, as HiRA

    def delta_weight(self, key: str, start: int, stop: int) -> torch.Tensor:
        return self.block_weight(start, stop) * (self.lora_B[key] @ self.lora_A[key])

    def block_output(self, key, xd, part, start, stop):
        return part + (xd @ self.delta_weight(key, start, stop).t()).to(part.dtype)


@METHODS.register("hira")
class HiraMethod(LoraMethod):
    """HiRA: W0 + W0 ⊙ (B·A) on each target (peft for whole modules, own layer for fused slices)."""

    name = "hira"
    Config = HiraConfig
    FUSED = FusedSliceHiRA

    def __init__(self, cfg):
        Method.__init__(self, cfg)  # HiRA has no alpha: LoraMethod's __init__ would read one
        self.r, self.alpha, self.dropout = self.config.r, float(self.config.r), self.config.dropout

    def peft_config(self, whole: list[str], conv: bool) -> PeftConfig:
        return PeftHiraConfig(r=self.r, hira_dropout=self.dropout, target_modules=whole, fan_in_fan_out=conv)
