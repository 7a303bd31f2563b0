"""The contract every fine-tuning method implements, and the helpers the trainer calls.

A method is a small class registered in ``METHODS`` under its config name, with a typed config
(``Config``, a :class:`hut.methods.config.MethodConfig` dataclass). The trainer only ever calls
:func:`build_method`, :func:`prepare_model`, :func:`count_parameters`, :meth:`Method.param_groups`
and :func:`merge_model`; it never branches on a method's name.

Adding a method: its module (a ``Method`` subclass with its ``Config``, registered with
``@METHODS.register("name")``), its ``configs/method/<name>.yaml``, and one import line in
``hut/methods/__init__.py``. ``tests/test_methods.py`` then runs it through the contract.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

import torch.nn as nn

from hut.methods.config import MethodConfig
from hut.methods.targets import family_name
from hut.registry import Registry

METHODS: Registry[type["Method"]] = Registry("method")


class Method(ABC):
    """One fine-tuning method.

    ``cfg`` is the resolved ``method`` config group as a plain dict (``name``, ``r``, ``targets``,
    ...); it is parsed into ``self.config`` (an instance of ``Config``), which refuses unknown keys
    and bad values. ``apply`` receives a model whose parameters are *all frozen* and must inject the
    method's modules / unfreeze the parameters it trains. The classification head is re-enabled
    afterwards by :func:`prepare_model`, for every method, as in the reference implementations.
    """

    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    identity_at_init: ClassVar[bool] = True  # adapted model == frozen model at step 0
    mergeable: ClassVar[bool] = False  # merge() folds the method into stock modules

    def __init__(self, cfg: Mapping[str, Any]):
        self.config = self.Config.parse(cfg)

    @abstractmethod
    def apply(self, model: nn.Module, family: str) -> nn.Module:
        """Inject into ``model`` (all params frozen on entry); return the model to train."""

    def merge(self, model: nn.Module) -> nn.Module:
        """Fold the trained method into the base weights; return a model of stock modules."""
        raise NotImplementedError(f"method '{self.name}' cannot be merged")

    def param_groups(self, model: nn.Module, groups: list[dict[str, Any]], eps: float) -> list[dict[str, Any]]:
        """The optimiser's parameter groups. The trainer passes its own (weight decay, head lr) and the
        Adam eps; a method may split them further (hut_compact's eps mapping). Default: unchanged."""
        return groups


def build_method(cfg: Mapping[str, Any]) -> Method:
    """Instantiate the registered method named ``cfg['name']`` (clear error if unknown).

    Every method is registered by then: importing this module imports the package ``hut.methods``
    first, whose ``__init__`` imports every method's module.
    """
    name = cfg.get("name")
    try:
        cls = METHODS.get(str(name))
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return cls(cfg)


def is_head(param_name: str, head_prefixes: Sequence[str]) -> bool:
    """Whether a parameter belongs to the task head (``head_prefixes``: module names, matched whole)."""
    parts = param_name.split(".")
    return any(
        ".".join(parts[i : i + len(p.split("."))]) == p
        for p in head_prefixes
        for i in range(len(parts))
    )


def prepare_model(model: nn.Module, method: Method, family: str, head_prefixes: Sequence[str]) -> nn.Module:
    """Freeze everything, let the method inject/unfreeze, then keep the task head trainable.

    ``family``: ``bert``, ``gpt2`` or ``llama``, or the model's transformers type (``roberta``).
    """
    family = family_name(family)
    for p in model.parameters():
        p.requires_grad_(False)
    model = method.apply(model, family)
    for n, p in model.named_parameters():
        if is_head(n, head_prefixes):
            p.requires_grad_(True)
    return model


def count_parameters(model: nn.Module, head_prefixes: Sequence[str]) -> dict[str, int]:
    """``adapter`` = trainable minus the task head; ``trainable``; ``total`` (shared tensors once)."""
    seen: set[int] = set()
    adapter = trainable = total = 0
    for n, p in model.named_parameters(remove_duplicate=True):
        if id(p) in seen:
            continue
        seen.add(id(p))
        k = p.numel()
        total += k
        if p.requires_grad:
            trainable += k
            if not is_head(n, head_prefixes):
                adapter += k
    return {"adapter": adapter, "trainable": trainable, "total": total}


def merge_model(model: nn.Module, method: Method) -> nn.Module:
    if not method.mergeable:
        raise NotImplementedError(f"method '{method.name}' cannot be merged")
    return method.merge(model)
