"""Typed config sections: a frozen dataclass per section, one set of validators for all of them.

A section (a method's options, the trainer, the data) declares its keys as a dataclass; each field's
type annotation and its :func:`option` metadata (``minimum``, ``below``, ``choices``) say what is
valid. :func:`parse` turns the section of a resolved config (a plain dict) into that dataclass and
refuses, with one line naming the key (``trainer.lr``) and what it expects:

* a key the section does not have (a typo would otherwise fall back to a default without a word);
* a value of the wrong type (``lr: abc``, ``r: 2.5``, ``memory_efficient: "yes"``; a bool is never a number);
* a number under its minimum (``r: 0``) or not below its bound (``dropout: 1``), a string outside its
  choices, a null where the key must be set;
* a key the section must have and lacks (``~trainer.weight_decay``): every key with ``require_all``
  (the sections whose group files set them all, so that the code reading them never meets a gap), or
  the fields marked ``option(..., required=True)``; the line says what the key expects.

Why not OmegaConf structured configs (a dataclass schema merged by Hydra): keys that only one task has
(SQuAD's ``data.train_articles``) would then be in every run's config, and so in the fingerprint of
every finished run, which would no longer match its record. Here each task adds its own keys to the
data section's schema (``hut.tasks.Task.data_keys``) and the composed config stays as it is.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar

C = TypeVar("C")


def option(default: Any, *, minimum: float | None = None, above: float | None = None, maximum: float | None = None,
           below: float | None = None, choices: Sequence[str] | None = None, required: bool = False) -> Any:
    """A config field with its validation rule: ``minimum`` / ``maximum`` (inclusive), ``above`` / ``below``
    (exclusive), ``choices`` (a string's); ``required``: :func:`parse` refuses a section without it."""
    meta = {"minimum": minimum, "above": above, "maximum": maximum, "below": below,
            "choices": tuple(choices) if choices else None, "required": required}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def parse(cls: type[C], cfg: Mapping[str, Any], section: str, owner: str = "",
          hidden: Sequence[str] = (), require_all: bool = False) -> C:
    """``cfg`` as a ``cls`` instance, each value checked; one line naming the first bad key.

    ``section``: how keys are named (``trainer`` -> ``trainer.lr``); ``owner``: added to every message
    (``for method 'hut'``); ``hidden``: keys not listed among the known ones in an unknown-key message;
    ``require_all``: every key of ``cls`` must be in ``cfg`` (else only those marked ``required``).
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        known = ", ".join(sorted(n for n in fields if n not in hidden))
        where = ", ".join(_key(section, k) for k in unknown)
        raise ValueError(f"{where}: no such key{owner and ' ' + owner}; the keys of "
                         f"{section or 'a run config'} are: {known}")
    missing = [n for n, f in fields.items() if n not in cfg and (require_all or f.metadata.get("required"))]
    if missing:
        k = missing[0]
        raise ValueError(f"{_key(section, k)} must be set{owner and ' ' + owner}: the config has no such key "
                         f"(expected {expects(hints[k], fields[k].metadata)})")
    values = {k: check(_key(section, k), v, hints[k], fields[k].metadata, owner) for k, v in cfg.items()}
    return cls(**values)


def expects(hint: Any, meta: Mapping[str, Any]) -> str:
    """What a field takes, in words: ``a number > 0``, ``an integer >= 1 or null``, ``one of no, fp16, bf16``."""
    base = _strip_optional(hint)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a mapping of keys to values"}.get(base, str(base))
    if base is str and meta.get("choices"):
        words = "one of " + ", ".join(meta["choices"])
    bounds = [f"{op} {meta[k]:g}" for k, op in (("minimum", ">="), ("above", ">"), ("maximum", "<="), ("below", "<"))
              if meta.get(k) is not None]
    return words + "".join(" " + b for b in bounds[:1]) + "".join(" and " + b for b in bounds[1:]) + \
        (" or null" if _is_optional(hint) else "")


def _key(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def check(where: str, v: Any, hint: Any, meta: Mapping[str, Any], owner: str = "") -> Any:
    """One value against its type and rule; returns it (an int given for a float, as a float)."""
    suffix = f" {owner}" if owner else ""
    if v is None:
        if _is_optional(hint):
            return None
        raise ValueError(f"{where} must be set{suffix} (got null)")
    base = _strip_optional(hint)
    if base is bool:
        if not isinstance(v, bool):
            raise ValueError(f"{where} must be true or false{suffix} (got {v!r})")
        return v
    if base is int:
        if isinstance(v, bool) or not isinstance(v, int):
            kind = "a positive integer" if meta.get("minimum") == 1 else "an integer"
            raise ValueError(f"{where} must be {kind}{suffix} (got {v!r})")
    elif base is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where} must be a number{suffix} (got {v!r})")
        v = float(v)
    elif base is str:
        if not isinstance(v, str):
            raise ValueError(f"{where} must be a string{suffix} (got {v!r})")
        choices = meta.get("choices")
        if choices and v not in choices:
            raise ValueError(f"unknown {where.rsplit('.', 1)[-1]} {v!r}{suffix} ({where}); choose one of "
                             f"{', '.join(choices)}")
        return v
    elif base is list:
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{where} must be a list{suffix} (got {v!r})")
        return list(v)
    elif base is dict:
        if not isinstance(v, Mapping):
            raise ValueError(f"{where} must be a mapping of keys to values{suffix} (got {v!r})")
        return v
    return _in_range(where, v, base, meta, suffix)


def _in_range(where: str, v: Any, base: Any, meta: Mapping[str, Any], suffix: str) -> Any:
    lo, above, hi, below = (meta.get(k) for k in ("minimum", "above", "maximum", "below"))
    if lo is not None and v < lo:
        if base is int and lo == 1:
            raise ValueError(f"{where} must be a positive integer{suffix} (got {v!r})")
        raise ValueError(f"{where} must be >= {lo:g}{suffix} (got {v!r})")
    if above is not None and not v > above:
        what = "a positive number" if above == 0 else f"> {above:g}"
        raise ValueError(f"{where} must be {what}{suffix} (got {v!r})")
    if hi is not None and v > hi:
        raise ValueError(f"{where} must be <= {hi:g}{suffix} (got {v!r})")
    if below is not None and not v < below:
        raise ValueError(f"{where} must be < {below:g}{suffix} (got {v!r})")
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
