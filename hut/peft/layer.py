"""``HutLayer``: peft's tuner layer for HUT (a frozen ``nn.Linear`` or transformers ``Conv1D``, named adapters).

Each adapter's factors are the suite's (:class:`hut.methods.hut.HutFactors`, or
:class:`~hut.methods.hut.CompactFactors` for ``compact``), one per output block, in one ``ModuleDict``
per block kind: ``hut_w`` (the whole matrix) or ``hut_q``, ``hut_k``, ``hut_v`` (thirds of a fused
[q | k | v] output), each keyed by adapter name, so that a checkpoint key reads
``...query.hut_w.M_A`` as peft expects (the adapter name second to last, removed on save).

The forward and the merge are :mod:`hut.methods.hut.core`'s, the functions the suite's
:class:`~hut.methods.hut.HutLinear` calls: the same autograd functions (exact under bf16/fp16
autocast, one device-to-host read per backward for the whole model through the tuner's
:class:`~hut.methods.hut.HostReads`), the same merged weights.

One adapter runs at a time (``set_adapter(name)``): HUT is multiplicative, and two active adapters
would need an order of composition that peft's API does not carry; asking for two is an error.
``merge`` keeps the pre-merge weight and bias (on the CPU, as peft's HiRA does), so ``unmerge``
restores them bit for bit.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn as nn
from peft.tuners.tuners_utils import BaseTunerLayer, check_adapters_to_merge

from hut.methods.hut import (CompactFactors, Factors, HostReads, HutFactors, assemble, block_vectors, hut_linear,
                             merged_weights)
from hut.methods.targets import FUSED_PARTS, SLICE_NAMES, WHOLE, in_out, linear_kind, output_blocks, weight_io
from hut.peft.config import HutConfig

PREFIX = "hut_"
BLOCK_KEYS = (WHOLE, *SLICE_NAMES)  # w, q, k, v


@dataclass(frozen=True)
class AdapterOptions:
    """What one adapter's forward needs beyond its factors."""

    bias_mode: str
    memory_efficient: bool


def make_factors(config: HutConfig, d: int, k: int, device: torch.device) -> Factors:
    """The factors of one d×k block, float32 on ``device`` (peft casts them after, as for every method)."""
    if config.compact is None:
        return HutFactors(d, k, config.r, init=config.init, init_std=config.init_std, device=device,
                          dtype=torch.float32)
    return CompactFactors(d, k, form=config.compact, eps_scale=config.r, device=device, dtype=torch.float32)


class HutLayer(nn.Module, BaseTunerLayer):
    """A frozen Linear/Conv1D with named HUT adapters (see the module doc)."""

    adapter_layer_names = tuple(PREFIX + k for k in BLOCK_KEYS)
    other_param_names = ("hut_options",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: HutConfig, slices: tuple[int, ...] | None,
                 reads: HostReads) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.kind = linear_kind(base_layer)
        self.in_features, self.out_features = in_out(base_layer)
        for key in BLOCK_KEYS:
            setattr(self, PREFIX + key, nn.ModuleDict())
        self.hut_options: dict[str, AdapterOptions] = {}
        self.reads = reads
        self._disable_adapters = False
        self.merged_adapters: list[str] = []
        self._pre_merge: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, config, slices)

    def _factors(self, key: str) -> nn.ModuleDict:
        return getattr(self, PREFIX + key)

    def update_layer(self, adapter_name: str, config: HutConfig, slices: tuple[int, ...] | None) -> None:
        """Add the adapter ``adapter_name`` (its factors on the base layer's device and dtype)."""
        conv = self.kind == "conv1d"
        if config.fan_in_fan_out != conv:
            raise ValueError(f"HutConfig.fan_in_fan_out={config.fan_in_fan_out}, but a targeted module is "
                             f"{'a transformers Conv1D (weight fan_in x fan_out)' if conv else 'an nn.Linear'}: "
                             f"set fan_in_fan_out={conv}")
        device = self.base_layer.weight.device
        for key, start, stop in output_blocks(self.out_features, slices):
            if key is not None:
                self._factors(key)[adapter_name] = make_factors(config, self.in_features, stop - start, device)
        self.hut_options[adapter_name] = AdapterOptions(config.bias_mode, config.memory_efficient)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters)

    def blocks(self, adapter_name: str) -> list[tuple[str | None, int, int]]:
        """The adapter's output blocks (key None: a frozen third of a fused output)."""
        if adapter_name in self._factors(WHOLE):
            return [(WHOLE, 0, self.out_features)]
        w = self.out_features // FUSED_PARTS
        return [(key if adapter_name in self._factors(key) else None, i * w, (i + 1) * w)
                for i, key in enumerate(SLICE_NAMES)]

    def _spec(self, adapter_name: str):
        base, opts = self.get_base_layer(), self.hut_options[adapter_name]
        return assemble(self.blocks(adapter_name), lambda start, stop, key: block_vectors(
            self._factors(key)[adapter_name], base.bias, start, stop, opts.bias_mode))

    # ------------------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        active = [a for a in self.active_adapters if a in self.hut_options]
        if self.merged or not active:
            return self.base_layer(x, *args, **kwargs)
        if len(active) > 1:
            raise ValueError(f"HUT runs one adapter at a time, and {active} are active: call set_adapter(name) "
                             "with one name (merge several with merge_adapter(names) to compose them)")
        name = active[0]
        base, opts = self.get_base_layer(), self.hut_options[name]
        spec, vecs = self._spec(name)
        return hut_linear(x, weight_io(base), base.bias, spec, vecs, bias_mode=opts.bias_mode,
                          memory_efficient=opts.memory_efficient, reads=self.reads)

    # ------------------------------------------------------------------------------ merge
    @torch.no_grad()
    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        """Fold the adapters (default: the active one) into the base weight and bias, in order.

        Several adapters compose (each merged into the weight the previous left). A layer without a
        bias gets one (the shift needs it); ``unmerge`` removes it again.
        """
        names = [n for n in check_adapters_to_merge(self, adapter_names) if n in self.hut_options]
        if not names:
            return
        base = self.get_base_layer()
        if self._pre_merge is None:
            b0 = base.bias
            self._pre_merge = (base.weight.detach().to("cpu", copy=True),
                               None if b0 is None else b0.detach().to("cpu", copy=True))
        for name in names:
            spec, vecs = self._spec(name)
            Wm, bm = merged_weights(weight_io(base), base.bias, spec, vecs, self.hut_options[name].bias_mode)
            if safe_merge and not (torch.isfinite(Wm).all() and torch.isfinite(bm).all()):
                raise ValueError(f"NaNs or infinities in the merged weights: the HUT adapter {name!r} seems broken")
            base.weight.copy_((Wm if self.kind == "conv1d" else Wm.t()).to(base.weight.dtype))
            if base.bias is None:
                base.bias = nn.Parameter(bm.to(base.weight.dtype), requires_grad=False)
            else:
                base.bias.copy_(bm.to(base.bias.dtype))
            self.merged_adapters.append(name)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the pre-merge weight and bias exactly."""
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.")
            return
        base = self.get_base_layer()
        w0, b0 = self._pre_merge  # type: ignore[misc]
        base.weight.copy_(w0.to(base.weight.device))
        if b0 is None:
            base.bias = None
        else:
            base.bias.copy_(b0.to(base.bias.device))
        self._pre_merge = None
        self.merged_adapters.clear()

    def supports_lora_conversion(self, adapter_name: str = "default") -> bool:
        return False  # multiplicative: W ⊙ (a ⊗ s) is no additive low-rank residual

    def __repr__(self) -> str:
        return "hut." + super().__repr__()
