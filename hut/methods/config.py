"""Typed method configs: one frozen dataclass per method, validated by :mod:`hut.config.typed`.

A method declares its options as a dataclass derived from :class:`MethodConfig`; each field's type
annotation and its :func:`option` metadata (``minimum``, ``choices``) say what is valid. ``parse``
turns the ``method`` config group (a plain dict, e.g. ``configs/method/hut.yaml`` after Hydra's
overrides) into that dataclass and refuses, with one line naming the key and the method, a key the
method does not have, a value of the wrong type or out of its range, and an empty or unknown target
list (``targets``, checked by :func:`hut.methods.targets.normalize_target_names`).

Defaults live in the dataclass and in ``configs/method/<name>.yaml`` alike; the yaml files set every
key explicitly (``tests/test_configs.py`` holds keys and values equal), so the paper's settings never
come from a silent default.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

from hut.methods.targets import normalize_target_names
from hut.config.typed import option, parse

__all__ = ["MethodConfig", "option"]

C = TypeVar("C", bound="MethodConfig")


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """Keys every method config has: ``name`` (the registry key) and an optional display ``label``."""

    name: str
    label: str | None = None  # how tables name this configuration (e.g. "Adpt^P 0.8M"); never changes the method

    @classmethod
    def parse(cls: type[C], cfg: Mapping[str, Any]) -> C:
        cfg = dict(cfg)
        if cfg.get("targets") is not None and "targets" in {f.name for f in dataclasses.fields(cls)}:
            cfg["targets"] = normalize_target_names(cfg["targets"])
        return parse(cls, cfg, "method", owner=f"for method '{cfg.get('name')}'", hidden=("name", "label"))
