"""Full and partial fine-tuning baselines: ``ft``, ``ft_top2``, ``bitfit``.

None of them adds a module: they only choose which of the model's own parameters train, so the
model is already made of stock modules and ``merge`` returns it unchanged (``mergeable = True``).
All three start at the frozen model's function (``identity_at_init``).

* ``ft``      - every parameter trains (tied embeddings, e.g. GPT-2's ``lm_head``/``wte``, count once).
* ``ft_top2`` - only the last ``n_layers`` (default 2) transformer blocks train, plus the task head
                that :func:`hut.methods.base.prepare_model` keeps trainable: the LoRA paper's FT^Top2
                baseline (GPT-2 medium: 2 blocks = 25.19M). Embeddings and final norms stay frozen.
                The block list is found per family: ``encoder.layer`` (bert), ``transformer.h``
                (gpt2), ``model.layers`` (llama).
* ``bitfit``  - BitFit (Ben Zaken et al., 2022): every bias term trains (attention, FFN and LayerNorm
                biases). A model without biases (Llama: bias-free projections and RMSNorm) is an
                error, not a silent zero-parameter run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch.nn as nn

from hut.methods.base import METHODS, Method
from hut.methods.config import MethodConfig, option

# family -> regex on the module name of the ModuleList that holds the transformer blocks
BLOCK_LISTS = {
    "bert": r"(^|\.)encoder\.layer$",
    "gpt2": r"(^|\.)transformer\.h$",
    "llama": r"(^|\.)model\.layers$",
}


def transformer_blocks(model: nn.Module, family: str) -> tuple[str, nn.ModuleList]:
    """(name, ModuleList) of the model's transformer blocks, for a target family."""
    if family not in BLOCK_LISTS:
        raise ValueError(f"no transformer-block list known for model family '{family}'; known: {sorted(BLOCK_LISTS)}")
    hits = [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.ModuleList) and re.search(BLOCK_LISTS[family], n)]
    if len(hits) != 1:
        raise ValueError(
            f"expected one transformer-block list matching {BLOCK_LISTS[family]!r} in this {family} model, "
            f"found {[n for n, _ in hits]}"
        )
    return hits[0]


class _NoInjection(Method):
    """Methods that only unfreeze existing parameters: merging is the identity."""

    identity_at_init = True
    mergeable = True

    def merge(self, model: nn.Module) -> nn.Module:
        return model


@METHODS.register("ft")
class FullFineTuning(_NoInjection):
    name = "ft"

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        for p in model.parameters():
            p.requires_grad_(True)
        return model


@dataclass(frozen=True)
class TopLayersConfig(MethodConfig):
    n_layers: int = option(2, minimum=1)  # the "2" of FT^Top2, counted from the top


@METHODS.register("ft_top2")
class TopLayersFineTuning(_NoInjection):
    name = "ft_top2"
    Config = TopLayersConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self.n_layers = self.config.n_layers

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        name, blocks = transformer_blocks(model, family)
        if self.n_layers > len(blocks):
            raise ValueError(f"method ft_top2: n_layers={self.n_layers} but {name} has only {len(blocks)} blocks")
        for block in list(blocks)[-self.n_layers:]:
            for p in block.parameters():
                p.requires_grad_(True)
        return model


@METHODS.register("bitfit")
class BitFit(_NoInjection):
    name = "bitfit"

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        biases = [p for n, p in model.named_parameters() if n == "bias" or n.endswith(".bias")]
        if not biases:
            raise ValueError(
                f"method bitfit: this {family} model has no bias parameters to train "
                f"(Llama-style models use bias-free projections and RMSNorm); pick another method"
            )
        for p in biases:
            p.requires_grad_(True)
        return model
