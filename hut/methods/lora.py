"""LoRA (Hu et al., 2021) through peft, plus LoRA on slices of a fused q/k/v module.

Whole modules (RoBERTa's query/value, GPT-2's c_proj, ...) get peft's LoRA layers, injected with
``peft.inject_adapter_in_model`` and the explicit module names that ``resolve_targets`` returns.

peft adapts whole modules only: it cannot put LoRA on just the q and v thirds of GPT-2's fused
``attn.c_attn``. :class:`FusedSliceLoRA` does that here (as the LoRA reference implementation's
``MergedLinear`` does): the frozen Conv1D plus, per adapted slice, its own A (r×d) and B (k×r), with
B = 0 at init; the slices that are not adapted are the frozen output, untouched.

Config: ``r`` (int > 0), ``alpha`` (scaling alpha / r), ``dropout`` (on the LoRA branch's input),
``targets`` (short names, default [q, v]). ``merge`` folds B·A·alpha/r into the frozen weights and puts
stock ``nn.Linear``/``Conv1D`` modules back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from hut.methods.base import METHODS, Method
from hut.methods.config import MethodConfig, option
from hut.methods.targets import fused_slices, in_out, linear_kind, output_blocks, replace_module, resolve_targets


@dataclass(frozen=True)
class LoraConfig(MethodConfig):
    r: int = option(8, minimum=1)  # LoRA's rank (RoBERTa-large GLUE: 8; GPT-2 medium E2E: 4)
    alpha: float = option(16.0, minimum=0.0)  # scaling alpha / r
    dropout: float = option(0.1, minimum=0.0, below=1.0)  # on the LoRA branch's input
    targets: list[str] = option(["q", "v"])


class FusedSliceLoRA(nn.Module):
    """Frozen fused Linear/Conv1D with LoRA on some of its output blocks (peft cannot do this)."""

    def __init__(self, base: nn.Module, slices: Sequence[int], r: int, alpha: float, dropout: float):
        super().__init__()
        self.kind = linear_kind(base)
        self.base = base
        self.d_in, self.d_out = in_out(base)
        self.blocks = output_blocks(self.d_out, slices)
        self.r, self.alpha, self.scaling = r, float(alpha), float(alpha) / r
        w = base.weight
        fk = {"device": w.device, "dtype": w.dtype}
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        for key, start, stop in self.blocks:
            if key is None:
                continue
            A = torch.empty(r, self.d_in, **fk)
            nn.init.kaiming_uniform_(A, a=math.sqrt(5))  # as nn.Linear and peft initialise lora_A
            self.lora_A[key] = nn.Parameter(A)
            self.lora_B[key] = nn.Parameter(torch.zeros(stop - start, r, **fk))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, blocks={self.blocks}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        xd = self.lora_dropout(x)
        parts = []
        for key, start, stop in self.blocks:
            part = y[..., start:stop]
            if key is not None:
                A, B = self.lora_A[key], self.lora_B[key]
                part = part + ((xd @ A.t()) @ B.t() * self.scaling).to(part.dtype)
            parts.append(part)
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def merged_module(self) -> nn.Module:
        base = self.base
        W = base.weight  # Conv1D: in×out; Linear: out×in
        Wm = W.detach().clone()
        for key, start, stop in self.blocks:
            if key is None:
                continue
            delta = (self.lora_B[key] @ self.lora_A[key]).to(W.dtype) * self.scaling  # (k, d_in)
            if self.kind == "conv1d":
                Wm[:, start:stop] += delta.t()
            else:
                Wm[start:stop, :] += delta
        base.weight = nn.Parameter(Wm, requires_grad=W.requires_grad)
        return base


def _is_peft_lora_layer(m: nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return isinstance(m, LoraLayer)


@METHODS.register("lora")
class LoraMethod(Method):
    """LoRA: W0 + B·A·alpha/r on each target (peft for whole modules, own layer for fused slices)."""

    name = "lora"
    Config = LoraConfig
    identity_at_init = True
    mergeable = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.r, self.alpha, self.dropout = self.config.r, self.config.alpha, self.config.dropout

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        from peft import LoraConfig as PeftLoraConfig
        from peft import inject_adapter_in_model

        targets = resolve_targets(model, family, self.config.targets)
        whole: list[str] = []
        fused: list[tuple[str, tuple[int, ...]]] = []
        for t in targets:
            linear_kind(model.get_submodule(t.name))
            sl = fused_slices(family, t)
            (fused.append((t.name, sl)) if sl is not None else whole.append(t.name))
        if whole:  # peft first: it marks only its own parameters trainable
            conv = any(isinstance(model.get_submodule(n), Conv1D) for n in whole)
            cfg = PeftLoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=whole,
                             fan_in_fan_out=conv, bias="none")
            model = inject_adapter_in_model(cfg, model)
        for name, sl in fused:
            replace_module(model, name, FusedSliceLoRA(model.get_submodule(name), sl, self.r, self.alpha,
                                                       self.dropout))
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        for name, m in list(model.named_modules()):
            if isinstance(m, FusedSliceLoRA):
                replace_module(model, name, m.merged_module())
            elif _is_peft_lora_layer(m):
                m.merge()
                replace_module(model, name, m.get_base_layer())
        return model
