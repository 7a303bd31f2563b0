"""Bottleneck adapters as small modules: ``hadapter``, ``padapter``, ``ladapter``.

An adapter maps a hidden state h (width d) to h + up(act(down(h))): down d -> m (``bottleneck``),
a nonlinearity, up m -> d. ``up`` starts at zero (weight and bias), so every adapter is the
identity at init; ``down`` is initialised like ``nn.Linear``. (The ``adapters`` library would do
this too, but it pins transformers 4.x.)

Where they sit
--------------
Each adapter is a child module of the sub-layer it belongs to (named ``adapter``) and is applied by
a forward hook on the module whose output it rewrites, so the frozen weights keep their names and
the model class and ``generate`` are untouched. ``print(model)`` shows every adapter.

=========  ==========================================  ==========================  ==========================
family     attention adapter (hadapter)                FFN adapter (hadapter,      block adapter (ladapter)
                                                       padapter)
=========  ==========================================  ==========================  ==========================
bert       ``attention.output.dropout``: after the     ``layer.N.output.dropout``  ``encoder.layer.N``: after
           output projection ``dense`` and its         (same, FFN output           the FFN's Add & LayerNorm
           dropout, before LayerNorm(x + residual)     ``dense``)                  (the layer's output)
gpt2       ``attn.resid_dropout``: after ``c_proj``    ``mlp.dropout``: after      ``transformer.h.N``: after
           and its dropout, before the residual add    ``mlp.c_proj`` + dropout    the FFN's residual add
llama      ``self_attn.o_proj`` (no dropout), before   ``mlp.down_proj``, before   ``model.layers.N``: after
           the residual add                            the residual add            the FFN's residual add
=========  ==========================================  ==========================  ==========================

* ``hadapter`` - Houlsby et al. (2019): two adapters per layer, after the attention output
  projection and after the FFN output projection, each before the residual connection (and, in the
  post-LN bert family, before the LayerNorm).
* ``padapter`` - Pfeiffer et al. (2021): one adapter per layer, after the FFN only (at the
  Houlsby FFN position). AdapterHub's Pfeiffer config also re-uses the layer's LayerNorm around the
  adapter; we keep the plain single-adapter form the LoRA/HUT papers' parameter counts describe.
* ``ladapter`` - Lin et al. (2020): one adapter per layer after the FFN *and its LayerNorm*, i.e. on
  the block output, with its own LayerNorm on its input (Lin et al.'s h + up(relu(down(LN(h))))).

Parameter counts (d = hidden size, m = bottleneck, L = layers): padapter L(2dm + m + d), hadapter
2L(2dm + m + d), ladapter L(2dm + m + 3d) (its LayerNorm adds 2d).

====================  ===========  ===================================  ======================
method, model         bottleneck   adapter parameters                   paper
====================  ===========  ===================================  ======================
padapter RoBERTa-L    64 (yaml)    3,171,840                            3M (Table 1)
padapter RoBERTa-L    16           811,392                              0.8M
hadapter RoBERTa-L    64 (yaml)    6,343,680                            6M
hadapter RoBERTa-L    8            835,968                              0.8M
ladapter GPT-2 M      224 (yaml)   11,089,152                           11.09M (Table 3)
ladapter GPT-2 M      6            368,784                              0.37M
hadapter GPT-2 M      112          11,064,576                           11.09M
====================  ===========  ===================================  ======================

(tests/test_adapters.py checks these counts on meta-device models.) Not mergeable: adapters are
extra modules with a nonlinearity, they cannot be folded into the frozen weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from hut.methods.base import METHODS, Method
from hut.methods.config import MethodConfig, option
from hut.methods.full import transformer_blocks

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "swish": nn.SiLU, "tanh": nn.Tanh}

# family -> site -> (path of the sub-layer that owns the adapter, path of the hooked module, relative
# to one transformer block). "" = the block itself.
SITES: dict[str, dict[str, tuple[str, str]]] = {
    "bert": {"attn": ("attention.output", "attention.output.dropout"),
             "ffn": ("output", "output.dropout"),
             "block": ("", "")},
    "gpt2": {"attn": ("attn", "attn.resid_dropout"),
             "ffn": ("mlp", "mlp.dropout"),
             "block": ("", "")},
    "llama": {"attn": ("self_attn", "self_attn.o_proj"),
              "ffn": ("mlp", "mlp.down_proj"),
              "block": ("", "")},
}


class BottleneckAdapter(nn.Module):
    """h -> h + up(act(down(LN(h)))) ; LN only with ``layer_norm=True`` (Lin et al.)."""

    def __init__(self, d: int, m: int, activation: str = "relu", layer_norm: bool = False,
                 eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.norm = nn.LayerNorm(d, eps=eps, **fk) if layer_norm else None
        self.down = nn.Linear(d, m, **fk)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(m, d, **fk)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.norm(h) if self.norm is not None else h
        return h + self.up(self.act(self.down(z)))

    def hook(self, module: nn.Module, args: tuple, output: Any) -> Any:
        """Forward hook: rewrite the hooked module's output (a tensor, or a tuple led by one)."""
        if isinstance(output, tuple):
            return (self(output[0]),) + tuple(output[1:])
        return self(output)


def _hidden_size(model: nn.Module) -> int:
    cfg = getattr(model, "config", None)
    d = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None)
    if not d:
        raise ValueError("bottleneck adapters: the model config has no hidden_size / n_embd")
    return int(d)


def _reference_tensor(module: nn.Module, fallback: nn.Module) -> torch.Tensor:
    for p in list(module.parameters()) + list(fallback.parameters()):
        return p
    raise ValueError("bottleneck adapters: found no parameter to take a device and dtype from")


@dataclass(frozen=True)
class AdapterConfig(MethodConfig):
    bottleneck: int = option(64, minimum=1)  # m, the adapter's hidden width
    activation: str = option("relu", choices=tuple(ACTIVATIONS))


@dataclass(frozen=True)
class LinAdapterConfig(AdapterConfig):
    bottleneck: int = option(224, minimum=1)  # GPT-2 medium: Table 3's 11.09M row


class _BottleneckMethod(Method):
    Config = AdapterConfig
    identity_at_init = True
    mergeable = False
    sites: tuple[str, ...] = ()  # which of SITES' positions get an adapter
    layer_norm = False

    def __init__(self, cfg):
        super().__init__(cfg)
        self.bottleneck, self.activation = self.config.bottleneck, self.config.activation

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        if family not in SITES:
            raise ValueError(f"method {self.name}: no adapter positions for model family '{family}'; "
                             f"known: {sorted(SITES)}")
        d = _hidden_size(model)
        eps = float(getattr(model.config, "layer_norm_eps", None) or getattr(model.config, "layer_norm_epsilon", None)
                    or 1e-5)
        _, blocks = transformer_blocks(model, family)
        for block in blocks:
            for site in self.sites:
                owner_path, hooked_path = SITES[family][site]
                owner = block.get_submodule(owner_path)
                hooked = block.get_submodule(hooked_path)
                if hasattr(owner, "adapter"):
                    raise ValueError(f"method {self.name}: {type(owner).__name__} already has an 'adapter' "
                                     f"attribute (a second adapter method on the same model?)")
                ref = _reference_tensor(hooked, owner)
                adapter = BottleneckAdapter(d, self.bottleneck, self.activation, self.layer_norm, eps,
                                            device=ref.device, dtype=ref.dtype)
                owner.adapter = adapter  # registered child: trained, saved and moved with the model
                hooked.register_forward_hook(adapter.hook)
        return model


@METHODS.register("hadapter")
class HoulsbyAdapter(_BottleneckMethod):
    name = "hadapter"
    sites = ("attn", "ffn")


@METHODS.register("padapter")
class PfeifferAdapter(_BottleneckMethod):
    name = "padapter"
    sites = ("ffn",)


@METHODS.register("ladapter")
class LinAdapter(_BottleneckMethod):
    name = "ladapter"
    Config = LinAdapterConfig
    sites = ("block",)
    layer_norm = True
