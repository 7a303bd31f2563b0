"""Typed method configs: one frozen dataclass per method, one set of validators for all of them.

A method declares its options as a dataclass derived from :class:`MethodConfig`; each field's type
annotation and its :func:`option` metadata (``minimum``, ``choices``) say what is valid. ``parse``
turns the ``method`` config group (a plain dict, e.g. ``configs/method/hut.yaml`` after Hydra's
overrides) into that dataclass and refuses, with one line naming the key and the method:

* a key the method does not have (a typo would otherwise fall back to the default without a word);
* a value of the wrong type (``r: 2.5``, ``memory_efficient: "yes"``; a bool is never an int);
* an integer or float under its minimum (``r: 0``) or not below its bound (``dropout: 1``), a string
  outside its choices;
* an empty or unknown target list (``targets``, checked by :func:`hut.methods.targets.normalize_target_names`).

Defaults live in the dataclass and in ``configs/method/<name>.yaml`` alike; the yaml files set every
key explicitly (``tests/test_configs.py`` holds keys and values equal), so the paper's settings never come from
a silent default.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar

from hut.methods.targets import normalize_target_names

C = TypeVar("C", bound="MethodConfig")


def option(default: Any, *, minimum: float | None = None, below: float | None = None,
           choices: Sequence[str] | None = None) -> Any:
    """A config field with its validation rule: ``minimum`` (inclusive), ``below`` (an exclusive maximum)."""
    meta = {"minimum": minimum, "below": below, "choices": tuple(choices) if choices else None}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """Keys every method config has: ``name`` (the registry key) and an optional display ``label``."""

    name: str
    label: str | None = None  # how tables name this configuration (e.g. "Adpt^P 0.8M"); never changes the method

    @classmethod
    def parse(cls: type[C], cfg: Mapping[str, Any]) -> C:
        method = str(cfg.get("name"))
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - set(fields))
        if unknown:
            known = ", ".join(n for n in fields if n not in ("name", "label"))
            raise ValueError(f"method '{method}' has no key(s) {', '.join(unknown)}; its keys are: {known}")
        values = {k: _check(method, k, v, hints[k], fields[k].metadata) for k, v in cfg.items()}
        return cls(**values)



def _check(method: str, key: str, v: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    where = f"method.{key}"
    optional = _is_optional(hint)
    if v is None:
        if optional:
            return None
        raise ValueError(f"{where} must be set for method '{method}' (got null)")
    base = _strip_optional(hint)
    if key == "targets":
        return normalize_target_names(v)
    if base is bool:
        if not isinstance(v, bool):
            raise ValueError(f"{where} must be true or false for method '{method}' (got {v!r})")
        return v
    if base is int:
        if isinstance(v, bool) or not isinstance(v, int):
            kind = "a positive integer" if meta.get("minimum") == 1 else "an integer"
            raise ValueError(f"{where} must be {kind} for method '{method}' (got {v!r})")
    elif base is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where} must be a number for method '{method}' (got {v!r})")
        v = float(v)
    elif base is str:
        if not isinstance(v, str):
            raise ValueError(f"{where} must be a string for method '{method}' (got {v!r})")
        choices = meta.get("choices")
        if choices and v not in choices:
            raise ValueError(f"unknown {key} {v!r} for method '{method}' ({where}); choose one of "
                             f"{', '.join(choices)}")
        return v
    lo, hi = meta.get("minimum"), meta.get("below")
    if lo is not None and v < lo:
        if base is int and lo == 1:
            raise ValueError(f"{where} must be a positive integer for method '{method}' (got {v!r})")
        raise ValueError(f"{where} must be >= {lo:g} for method '{method}' (got {v!r})")
    if hi is not None and not v < hi:
        raise ValueError(f"{where} must be < {hi:g} for method '{method}' (got {v!r})")
    return v


def _is_optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint) if _is_union(hint) else False


def _strip_optional(hint: Any) -> Any:
    if _is_union(hint):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    origin = typing.get_origin(hint)
    return origin or hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)
