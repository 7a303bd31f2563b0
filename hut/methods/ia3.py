"""(IA)^3 (Liu et al., 2022): learned vectors, initialised to 1, that rescale activations.

The vectors rescale the *outputs* of the targeted modules, and for ``ffn_out`` its *input* (the
FFN's intermediate activation, as the (IA)^3 paper and peft's ``feedforward_modules`` do). The
paper's placement is keys, values and the FFN activation: ``targets: [k, v, ffn_out]``. Identity at
init, merges exactly (the vectors fold into the frozen weight and bias).

Why this is not peft's IA3 layer: peft multiplies the base layer's output, which under bf16/fp16
autocast is already rounded to the low dtype, by the vector. A vector entry that moves by less than
half a bf16 step (2^-9 relative) then rounds back to the same output: with every vector at 1.001,
peft's IA3 on a small RoBERTa gave a bf16 output change of 0.000 of the float32 one
(``python -m hut.precision`` on the code before commit b1c658b, which moved IA3 here;
``tests/test_mixed_precision.py`` now requires 0.7-1.3 of it for every method). IA3 is HUT with a single
vector: an output scale ``s`` (a = 1, t = 0, the frozen bias scaled with the output, HUT's
``bias_mode: scale``) or, for ``ffn_out``, an input scale ``a``. So it runs on HUT's layer
(:class:`hut.methods.hut.HutLinear`), which folds the scales into the float32 weight before its one
cast and computes exactly what peft's IA3 computes in float32 (``tests/test_ia3.py`` holds the two
equal in outputs and gradients).

Fused q/k/v (GPT-2's ``attn.c_attn``): k and v rescale the k and v slices only (peft can only
rescale the whole c_attn, queries included). RoBERTa-large, [k, v, ffn_out]:
24 × (1024 + 1024 + 4096) = 147,456 parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from hut.methods.base import METHODS, Method
from hut.methods.config import MethodConfig, option
from hut.methods.hut import Factors, HostReads, HutLinear, merge_hut
from hut.methods.targets import fused_slices, linear_kind, replace_module, resolve_targets

INPUT_SIDE = ("ffn_out",)  # targets whose *input* is rescaled; every other target rescales its output


@dataclass(frozen=True)
class IA3Config(MethodConfig):
    targets: list[str] = option(["k", "v", "ffn_out"])  # the (IA)^3 paper's placement


class IA3Vector(Factors):
    """One (IA)^3 vector ``l`` (init 1): an output scale (length k) or an input scale (length d)."""

    def __init__(self, d: int, k: int, input_side: bool, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.input_side = input_side
        self.l = nn.Parameter(torch.ones(d if input_side else k, **fk))
        # The fixed parts of HUT's (a, s, t) triple: not parameters, not saved.
        self.register_buffer("ones_in", torch.ones(d, **fk), persistent=False)
        self.register_buffer("ones_out", torch.ones(k, **fk), persistent=False)
        self.register_buffer("zeros_out", torch.zeros(k, **fk), persistent=False)

    def vectors(self):
        if self.input_side:
            return self.l, None, self.ones_out, self.zeros_out
        return self.ones_in, None, self.l, self.zeros_out

    def extra_repr(self) -> str:
        return f"{'input' if self.input_side else 'output'} scale, size={self.l.numel()}"


class IA3Linear(HutLinear):
    """A frozen Linear/Conv1D with (IA)^3 vectors on all or some (fused) output blocks."""

    FACTORS = "ia3"


@METHODS.register("ia3")
class IA3Method(Method):
    name = "ia3"
    Config = IA3Config
    identity_at_init = True
    mergeable = True

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        input_side = {t.name for short in INPUT_SIDE if short in self.config.targets
                      for t in resolve_targets(model, family, [short])}
        reads = HostReads()  # one per model (hut.methods.hut.reads)
        for t in resolve_targets(model, family, self.config.targets):
            base = model.get_submodule(t.name)
            linear_kind(base)
            w, inp = base.weight, t.name in input_side
            layer = IA3Linear(base, fused_slices(family, t),
                              lambda d, k, inp=inp, w=w: IA3Vector(d, k, inp, device=w.device, dtype=w.dtype),
                              bias_mode="scale", reads=reads)
            replace_module(model, t.name, layer)
        return model

    def merge(self, model: nn.Module, keep_original: bool = True) -> nn.Module:
        return merge_hut(model, keep_original=keep_original)
