"""HUT's parts as methods of their own: which of an input scale, an output scale and a shift does the work.

HUT is, per adapted matrix (``hut/methods/hut/layer.py``), ``h = s ⊙ f(a ⊙ x) + t`` with f the frozen
affine layer: an input scale ``a`` (d), an output scale ``s = γ ⊙ mean M_B`` (k) and a shift
``t = β`` (k). The ladder of its parts, each a subset of (a, s, t) on HUT's layer (exact under
bf16/fp16 autocast, mergeable, identity at init), on the same targets as HUT (q, v):

=================  ==========  ======================================================================
method             vectors     what
=================  ==========  ======================================================================
``ia3`` on [q, v]  s           output scale only: (IA)^3's layer (``hut/methods/ia3.py``) with
                               ``targets: [q, v]`` (no new method: the same code, another placement)
``ssf``            s, t        output scale and shift: SSF (Lian et al., 2022, "Scaling & Shifting
                               Your Features") placed after q and v only (SSF itself places γ, β after
                               every operation of a ViT)
``hut_noshift``    a, s        input scale and output scale, no shift
``hut_compact``    a, (b,) s, t HUT's function with its means as parameters (``form: folded``: a, s, t)
``hut``            M_A, M_B,   the paper's parameterisation
                   γ, β
=================  ==========  ======================================================================

The frozen bias is scaled with the output (HUT's ``bias_mode: scale``): ``h = s ⊙ (x·W0 + b0) + t``,
so ``ssf`` is SSF's ``γ ⊙ y + β`` on the frozen layer's output y exactly. (Without a shift, HUT's
``keep`` mode would give the same function: ``γ ⊙ (x·W + b0)``.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from hut.methods.base import METHODS, Method
from hut.methods.config import MethodConfig, option
from hut.methods.hut import Factors, HostReads, HutLinear, merge_hut
from hut.methods.targets import fused_slices, linear_kind, replace_module, resolve_targets


@dataclass(frozen=True)
class PartConfig(MethodConfig):
    targets: list[str] = option(["q", "v"])  # HUT's placement (Table 6), so that rows differ only in the parts
    memory_efficient: bool = option(True)  # HUT's autograd functions; false = plain autograd (tests)


class PartFactors(Factors):
    """Some of HUT's vectors: γ (output scale, always), a (input scale) and β (shift) if asked.

    A part that is not trained is a fixed buffer (ones / zeros), not a parameter, and is not saved.
    """

    def __init__(self, d: int, k: int, *, input_scale: bool, shift: bool, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.d, self.k = d, k
        self.gamma = nn.Parameter(torch.ones(k, **fk))
        self.a = nn.Parameter(torch.ones(d, **fk)) if input_scale else None
        self.beta = nn.Parameter(torch.zeros(k, **fk)) if shift else None
        self.register_buffer("ones_in", torch.ones(d, **fk), persistent=False)
        self.register_buffer("zeros_out", torch.zeros(k, **fk), persistent=False)

    def vectors(self):
        a = self.a if self.a is not None else self.ones_in
        beta = self.beta if self.beta is not None else self.zeros_out
        return a, None, self.gamma, beta

    def extra_repr(self) -> str:
        parts = ["a"] * (self.a is not None) + ["γ"] + ["β"] * (self.beta is not None)
        return f"d={self.d}, k={self.k}, trains={'+'.join(parts)}"


class PartLinear(HutLinear):
    """HUT's layer with some of its parts (parameter names ``...query.part.w.gamma``)."""

    FACTORS = "part"


class PartMethod(Method):
    """A subset of HUT's (a, s, t) on HUT's layer; subclasses say which (``INPUT_SCALE``, ``SHIFT``)."""

    Config = PartConfig
    identity_at_init = True
    mergeable = True
    INPUT_SCALE: ClassVar[bool]
    SHIFT: ClassVar[bool]

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        reads = HostReads()  # one per model (hut.methods.hut.reads)
        for t in resolve_targets(model, family, self.config.targets):
            base = model.get_submodule(t.name)
            linear_kind(base)
            w = base.weight
            layer = PartLinear(base, fused_slices(family, t),
                               lambda d, k, w=w: PartFactors(d, k, input_scale=self.INPUT_SCALE, shift=self.SHIFT,
                                                             device=w.device, dtype=w.dtype),
                               bias_mode="scale", memory_efficient=self.config.memory_efficient, reads=reads)
            replace_module(model, t.name, layer)
        return model

    def merge(self, model: nn.Module, keep_original: bool = True) -> nn.Module:
        return merge_hut(model, keep_original=keep_original)


@METHODS.register("ssf")
class SsfMethod(PartMethod):
    """Output scale and shift (γ, β; SSF-style): 2k parameters per matrix."""

    name = "ssf"
    INPUT_SCALE, SHIFT = False, True


@METHODS.register("hut_noshift")
class HutNoShiftMethod(PartMethod):
    """Input scale and output scale, no shift (a, γ): d + k parameters per matrix."""

    name = "hut_noshift"
    INPUT_SCALE, SHIFT = True, False
