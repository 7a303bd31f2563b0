"""LoRA (Hu et al., 2021) through peft, plus LoRA on slices of a fused q/k/v module; DoRA (Liu et al., 2024).

Whole modules (RoBERTa's query/value, GPT-2's c_proj, ...) get peft's LoRA layers, injected with
``peft.inject_adapter_in_model`` and the explicit module names that ``resolve_targets`` returns.

peft adapts whole modules only: it cannot put LoRA on just the q and v thirds of GPT-2's fused
``attn.c_attn``. :class:`FusedSliceLoRA` does that here (as the LoRA reference implementation's
``MergedLinear`` does): the frozen Conv1D plus, per adapted slice, its own A (r×d) and B (k×r), with
B = 0 at init; the slices that are not adapted are the frozen output, untouched.

Config: ``r`` (int > 0), ``alpha`` (scaling alpha / r), ``dropout`` (on the LoRA branch's input),
``targets`` (short names, default [q, v]). ``merge`` folds B·A·alpha/r into the frozen weights and puts
stock ``nn.Linear``/``Conv1D`` modules back.

DoRA (``dora``, the same options): :class:`DoraLinear` on every target, whole modules and fused
slices alike (peft's DoRA rounds a magnitude update away under autocast; see there). A variant of
LoRA's update subclasses :class:`FusedSliceLoRA` and changes ``delta_weight`` / ``block_output`` /
``merged_block`` (HiRA: ``hut/methods/hira.py``) or, as DoRA, its ``forward``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
from peft import LoraConfig as PeftLoraConfig
from peft import PeftConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
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

    def block_weight(self, start: int, stop: int) -> torch.Tensor:
        """The frozen weight of one output block as (k_b, d_in), a view."""
        W = self.base.weight  # Conv1D: in×out; Linear: out×in
        return W[:, start:stop].t() if self.kind == "conv1d" else W[start:stop, :]

    def delta_weight(self, key: str, start: int, stop: int) -> torch.Tensor:
        """ΔW of one adapted block, (k_b, d_in): B·A·alpha/r."""
        return (self.lora_B[key] @ self.lora_A[key]) * self.scaling

    def block_output(self, key: str, xd: torch.Tensor, part: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """An adapted block's output from the frozen one (``part``) and the dropped-out input ``xd``."""
        A, B = self.lora_A[key], self.lora_B[key]
        return part + ((xd @ A.t()) @ B.t() * self.scaling).to(part.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        xd = self.lora_dropout(x)
        parts = []
        for key, start, stop in self.blocks:
            part = y[..., start:stop]
            parts.append(part if key is None else self.block_output(key, xd, part, start, stop))
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def merged_module(self) -> nn.Module:
        base = self.base
        W = base.weight  # Conv1D: in×out; Linear: out×in
        Wm = W.detach().clone()
        bias = base.bias.detach().clone() if base.bias is not None else None
        for key, start, stop in self.blocks:
            if key is None:
                continue
            new_w, new_b = self.merged_block(key, start, stop)
            if self.kind == "conv1d":
                Wm[:, start:stop] = new_w.t().to(W.dtype)
            else:
                Wm[start:stop, :] = new_w.to(W.dtype)
            if new_b is not None and bias is not None:
                bias[start:stop] = new_b.to(bias.dtype)
        base.weight = nn.Parameter(Wm, requires_grad=W.requires_grad)
        if bias is not None:
            base.bias = nn.Parameter(bias, requires_grad=base.bias.requires_grad)
        return base

    def merged_block(self, key: str, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(merged weight (k_b, d_in), merged bias or None = unchanged) of one adapted block."""
        return self.block_weight(start, stop) + self.delta_weight(key, start, stop).to(self.base.weight.dtype), None


class DoraLinear(FusedSliceLoRA):
    """DoRA (Liu et al., 2024) on a whole Linear/Conv1D or on some output blocks of a fused one:
    ``m ⊙ (W0 + ΔW)·x / ‖W0 + ΔW‖ + b0`` per output row, the norm detached (DoRA's Sec. 4.3, as peft),
    m initialised to ‖W0‖ per row (identity at init). Per-row norms make a slice of c_attn exactly a
    matrix of its own.

    Why not peft's DoRA layer for whole modules: peft adds ``(m/‖·‖ - 1)·(x·W0)`` to the base layer's
    output, which under bf16/fp16 autocast is already rounded to the low dtype, and rounds the sum
    again: a magnitude that moves by less than half a bf16 step (2^-9 relative) leaves every output
    where it was (``python -m hut.precision methods=[dora]`` with peft's layer: share -0.02 under bf16;
    ``tests/test_mixed_precision.py`` requires 0.7-1.3). Here the scale multiplies the float32 weight
    before autocast's one cast, as HUT's folded weight does; in float32 this is peft's DoRA
    (``tests/test_relatives.py`` holds the two equal in outputs and gradients).
    """

    def __init__(self, base: nn.Module, slices: Sequence[int] | None, r: int, alpha: float, dropout: float):
        super().__init__(base, slices, r, alpha, dropout)
        self.magnitude = nn.ParameterDict({
            key: nn.Parameter(self.block_weight(start, stop).detach().norm(dim=1))
            for key, start, stop in self.blocks if key is not None})

    def _scale(self, key: str, start: int, stop: int) -> torch.Tensor:
        Wb = self.block_weight(start, stop)
        norm = (Wb + self.delta_weight(key, start, stop).detach().to(Wb.dtype)).norm(dim=1).detach()
        return self.magnitude[key] / norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.base.bias
        xd = self.lora_dropout(x)
        parts = []
        for key, start, stop in self.blocks:
            Wb = self.block_weight(start, stop)
            bb = b0[start:stop] if b0 is not None else None
            if key is None:  # a frozen block: what the frozen layer computes
                parts.append(nn.functional.linear(x, Wb, bb))
                continue
            scale = self._scale(key, start, stop)
            y = nn.functional.linear(x, Wb * scale[:, None], bb)  # autocast rounds W0 ⊙ m/‖·‖ once
            lora = (xd @ self.lora_A[key].t()) @ self.lora_B[key].t()
            parts.append(y + (lora * (scale * self.scaling)).to(y.dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def merged_block(self, key, start, stop):
        w = self.block_weight(start, stop)
        return self._scale(key, start, stop)[:, None] * (w + self.delta_weight(key, start, stop).to(w.dtype)), None


def _is_peft_layer(m: nn.Module) -> bool:
    return isinstance(m, BaseTunerLayer)


@METHODS.register("lora")
class LoraMethod(Method):
    """LoRA: W0 + B·A·alpha/r on each target (peft for whole modules, own layer for fused slices)."""

    name = "lora"
    Config = LoraConfig
    identity_at_init = True
    mergeable = True
    FUSED: type[FusedSliceLoRA] = FusedSliceLoRA  # the layer for slices of a fused q/k/v module

    def __init__(self, cfg):
        super().__init__(cfg)
        self.r, self.alpha, self.dropout = self.config.r, self.config.alpha, self.config.dropout

    def peft_config(self, whole: list[str], conv: bool) -> PeftConfig:
        """peft's config for the whole modules ``whole`` (``conv``: GPT-2's Conv1D, stored in×out)."""
        return PeftLoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=whole,
                              fan_in_fan_out=conv, bias="none")

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        targets = resolve_targets(model, family, self.config.targets)
        whole: list[str] = []
        fused: list[tuple[str, tuple[int, ...]]] = []
        for t in targets:
            linear_kind(model.get_submodule(t.name))
            sl = fused_slices(family, t)
            (fused.append((t.name, sl)) if sl is not None else whole.append(t.name))
        if whole:  # peft first: it marks only its own parameters trainable
            conv = any(isinstance(model.get_submodule(n), Conv1D) for n in whole)
            model = inject_adapter_in_model(self.peft_config(whole, conv), model)
        for name, sl in fused:
            replace_module(model, name, self.FUSED(model.get_submodule(name), sl, self.r, self.alpha, self.dropout))
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        for name, m in list(model.named_modules()):
            if isinstance(m, FusedSliceLoRA):
                replace_module(model, name, m.merged_module())
            elif _is_peft_layer(m):
                m.merge()
                replace_module(model, name, m.get_base_layer())
        return model


@METHODS.register("dora")
class DoraMethod(LoraMethod):
    """DoRA (Liu et al., 2024): LoRA's direction with a learned magnitude per output row, on
    :class:`DoraLinear` for every target (whole modules and fused slices; see there why not peft's)."""

    name = "dora"

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        for t in resolve_targets(model, family, self.config.targets):
            base = model.get_submodule(t.name)
            linear_kind(base)
            replace_module(model, t.name, DoraLinear(base, fused_slices(family, t), self.r, self.alpha, self.dropout))
        return model
