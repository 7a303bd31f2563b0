"""A model from its config with a method applied: the one way the suite builds one.

    adapted = build(model_cfg, method_cfg, kind, num_labels)    # load (hut.models), apply (hut.methods), count

The trainer, ``hut.export.load_run``, ``hut.params``, ``hut.flops``, ``hut.precision``, the bench and the
plan's memory estimate all build through here; :func:`load_base` and :func:`adapt` are its two halves,
for a caller that changes the base model between them (``hut.precision`` draws its biases, the bench
shares one base among its candidates). ``method_cfg=None`` is the frozen model
(:class:`hut.methods.frozen.Frozen`: only the task head trains).

Which models can do which kind of task: an encoder (``bert`` family) classifies, regresses and
extracts spans; a decoder (``gpt2``, ``llama``) generates and classifies. :func:`check_kind` refuses
the rest with one line naming the model and the task, before anything is built.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn

from hut.methods import Method, build_method, count_parameters, prepare_model
from hut.methods.frozen import frozen
from hut.models import FAMILY_OF_MODEL_TYPE, LoadedModel, load_model

#: the kind of task a model is built for when no task says (``hut.params``, Table 2's FLOPs, the bench,
#: the plan's memory): an encoder gets a 2-label sequence classifier, a decoder its causal-LM head
KIND_OF_FAMILY = {"bert": "classification", "gpt2": "generation", "llama": "generation"}
#: the kinds of task each family can do (the Auto* class and the head exist and make sense)
KINDS_OF_FAMILY = {"bert": ("classification", "regression", "qa"),
                   "gpt2": ("generation", "classification", "regression"),
                   "llama": ("generation", "classification", "regression")}


@dataclass
class Adapted:
    """A built model with its method applied."""

    model: nn.Module
    method: Method
    family: str  # the target-name family (hut.methods.targets): bert | gpt2 | llama
    head_prefixes: tuple[str, ...]  # module names of the task head (trainable under every method)
    tokenizer: Any
    params: dict[str, int]  # hut.methods.count_parameters: adapter, trainable, total
    name: str


def family_of(model_cfg: Mapping[str, Any]) -> str:
    """The family of a model config's architecture (``arch.model_type``), or one line naming the known ones."""
    model_type = str((model_cfg.get("arch") or {}).get("model_type"))
    if model_type not in FAMILY_OF_MODEL_TYPE:
        raise ValueError(f"model '{model_cfg.get('name')}': model type '{model_type}' has no target family; "
                         f"known: {', '.join(sorted(FAMILY_OF_MODEL_TYPE))}")
    return FAMILY_OF_MODEL_TYPE[model_type]


def default_kind(model_cfg: Mapping[str, Any]) -> str:
    return KIND_OF_FAMILY[family_of(model_cfg)]


def check_kind(model_cfg: Mapping[str, Any], kind: str, task: str | None = None) -> None:
    """One line when the model cannot do the task's kind (an encoder generating, a decoder extracting spans)."""
    family = family_of(model_cfg)
    if kind not in KINDS_OF_FAMILY[family]:
        able = " or ".join(f for f, kinds in KINDS_OF_FAMILY.items() if kind in kinds)
        what = f"task={task} ({kind})" if task else f"a {kind} task"
        role = "encoder" if family == "bert" else "decoder"
        raise ValueError(f"model={model_cfg.get('name')} is a {family} {role} and cannot do {what}: choose a "
                         f"model of family {able}")


def load_base(model_cfg: Mapping[str, Any], kind: str | None = None, num_labels: int = 2, *,
              pretrained: bool = True, with_tokenizer: bool = True) -> LoadedModel:
    """The base model for ``kind`` (default: :func:`default_kind`), its kind checked first."""
    kind = kind or default_kind(model_cfg)
    check_kind(model_cfg, kind)
    return load_model(model_cfg, kind, num_labels, pretrained=pretrained, with_tokenizer=with_tokenizer)


def adapt(base: LoadedModel, method: Mapping[str, Any] | Method | None) -> Adapted:
    """Apply a method (its config, a built :class:`Method`, or None: the frozen model) to a base model."""
    if method is None:
        method = frozen()
    elif not isinstance(method, Method):
        method = build_method(method)
    model = prepare_model(base.model, method, base.family, base.head_prefixes)
    return Adapted(model, method, base.family, tuple(base.head_prefixes), base.tokenizer,
                   count_parameters(model, base.head_prefixes), base.name)


def build(model_cfg: Mapping[str, Any], method: Mapping[str, Any] | Method | None, kind: str | None = None,
          num_labels: int = 2, *, pretrained: bool = True, with_tokenizer: bool = True,
          device: str | None = None) -> Adapted:
    """:func:`load_base` then :func:`adapt`; ``device``: where the tensors are made (``meta``: shapes
    only, nothing computed or allocated)."""
    with torch.device(device) if device else nullcontext():
        base = load_base(model_cfg, kind, num_labels, pretrained=pretrained, with_tokenizer=with_tokenizer)
        return adapt(base, method)
