"""Short target names (q, k, v, o, ffn_in, ffn_out) -> the modules of each architecture family.

GPT-2 keeps q, k and v fused in one ``Conv1D`` (``attn.c_attn``, output = [q | k | v]); there a
short name selects a *slice* of the fused output, so "q and v" adapts two thirds of c_attn and
leaves the k slice untouched.

Also here: the helpers every layer that wraps a frozen ``nn.Linear``/``Conv1D`` shares (HUT, LoRA on
fused slices, IA3): which kind it is, its (d_in, d_out), its weight in the x·W (d_in × d_out)
orientation, and the partition of a fused module's output columns into blocks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from hut.models import FAMILY_OF_MODEL_TYPE

SHORT_NAMES = ("q", "k", "v", "o", "ffn_in", "ffn_out")

# family -> short name -> (regex on the full module name, fused slice index or None)
PATTERNS: dict[str, dict[str, tuple[str, int | None]]] = {
    "bert": {  # BERT and RoBERTa
        "q": (r"(^|\.)attention\.self\.query$", None),
        "k": (r"(^|\.)attention\.self\.key$", None),
        "v": (r"(^|\.)attention\.self\.value$", None),
        "o": (r"(^|\.)attention\.output\.dense$", None),
        "ffn_in": (r"(^|\.)intermediate\.dense$", None),
        "ffn_out": (r"(^|\.)layer\.\d+\.output\.dense$", None),
    },
    "gpt2": {
        "q": (r"(^|\.)attn\.c_attn$", 0),
        "k": (r"(^|\.)attn\.c_attn$", 1),
        "v": (r"(^|\.)attn\.c_attn$", 2),
        "o": (r"(^|\.)attn\.c_proj$", None),
        "ffn_in": (r"(^|\.)mlp\.c_fc$", None),
        "ffn_out": (r"(^|\.)mlp\.c_proj$", None),
    },
    "llama": {
        "q": (r"(^|\.)self_attn\.q_proj$", None),
        "k": (r"(^|\.)self_attn\.k_proj$", None),
        "v": (r"(^|\.)self_attn\.v_proj$", None),
        "o": (r"(^|\.)self_attn\.o_proj$", None),
        "ffn_in": (r"(^|\.)mlp\.(gate_proj|up_proj)$", None),
        "ffn_out": (r"(^|\.)mlp\.down_proj$", None),
    },
}
FUSED_PARTS = 3  # c_attn = [q | k | v], each of width n_embd
SLICE_NAMES = ("q", "k", "v")  # fused c_attn blocks, in output order
WHOLE = "w"  # block key of a whole (non-fused) module


@dataclass(frozen=True)
class Target:
    """One module to adapt. ``slices`` is None for a whole module, else the fused blocks to adapt."""

    name: str
    slices: tuple[int, ...] | None = None


def normalize_target_names(targets: str | Iterable[str]) -> list[str]:
    """Accept ``[q, v]``, ``"q,v"``, ``"qv"`` or ``"qkvo"``; return validated short names in order."""
    if isinstance(targets, str):
        parts = [t.strip() for t in targets.split(",") if t.strip()]
        if len(parts) == 1 and parts[0] not in SHORT_NAMES and set(parts[0]) <= set("qkvo"):
            parts = list(parts[0])
    else:
        parts = [str(t) for t in targets]
    if not parts:
        raise ValueError("method.targets is empty; give at least one of " + ", ".join(SHORT_NAMES))
    bad = [t for t in parts if t not in SHORT_NAMES]
    if bad:
        raise ValueError(f"unknown target name(s) {bad} in method.targets; known: {', '.join(SHORT_NAMES)}")
    return list(dict.fromkeys(parts))


def _linear_like_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if n and (isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D")]


def family_name(family: str) -> str:
    """A target family (``bert``, ``gpt2``, ``llama``) from itself or from the transformers model type a
    user would type (``roberta`` -> ``bert``); anything else is one line naming both lists."""
    if family in PATTERNS:
        return family
    if family in FAMILY_OF_MODEL_TYPE:
        return FAMILY_OF_MODEL_TYPE[family]
    raise ValueError(f"unknown model family '{family}': give a family ({', '.join(PATTERNS)}) or a transformers "
                     f"model type ({', '.join(sorted(FAMILY_OF_MODEL_TYPE))})")


def resolve_targets(model: nn.Module, family: str, targets: str | Iterable[str]) -> list[Target]:
    """The modules (and fused slices) named by ``targets``; a name matching nothing is an error."""
    family = family_name(family)
    names = normalize_target_names(targets)
    modules = dict(model.named_modules())
    found: dict[str, set[int] | None] = {}
    for short in names:
        pattern, part = PATTERNS[family][short]
        hits = [n for n in modules if n and re.search(pattern, n)]
        if not hits:
            have = sorted({re.sub(r"\.\d+\.", ".N.", n) for n in _linear_like_names(model)})
            raise ValueError(
                f"target '{short}' (pattern {pattern!r}) matches no module of this {family} model; "
                f"its linear modules are: {', '.join(have)}"
            )
        for n in hits:
            if part is None:
                found[n] = None
            else:
                found.setdefault(n, set())
                found[n].add(part)  # type: ignore[union-attr]
    out = []
    for n in modules:  # model order, deterministic
        if n in found:
            s = found[n]
            whole = s is None or len(s) == FUSED_PARTS
            out.append(Target(n, None if whole else tuple(sorted(s))))
    return out


def get_parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, child = get_parent(model, name)
    setattr(parent, child, new)


# --------------------------------------------------------------------------------------------------
# Frozen Linear / Conv1D modules and their output blocks
# --------------------------------------------------------------------------------------------------
def linear_kind(base: nn.Module) -> str:
    """``linear`` (weight out×in) or ``conv1d`` (transformers' Conv1D, weight in×out); else an error."""
    if isinstance(base, Conv1D):
        return "conv1d"
    if isinstance(base, nn.Linear):
        return "linear"
    raise ValueError(f"cannot adapt {type(base).__name__}: this method wraps nn.Linear or transformers Conv1D")


def in_out(base: nn.Module) -> tuple[int, int]:
    """(d_in, d_out) of a Linear (out×in storage) or Conv1D (in×out storage)."""
    w = base.weight
    return (w.shape[0], w.shape[1]) if isinstance(base, Conv1D) else (w.shape[1], w.shape[0])


def weight_io(base: nn.Module) -> torch.Tensor:
    """The weight as d_in × d_out (x·W convention): a view, no copy."""
    w = base.weight
    return w if isinstance(base, Conv1D) else w.t()


def fused_slices(family: str, target: Target) -> tuple[int, ...] | None:
    """The blocks to adapt when ``target`` is a fused q/k/v module, else None.

    ``resolve_targets`` reports a fused module whose three parts are all requested as a whole
    module; layers that adapt slices still give each of q, k, v its own parameters, as for separate
    matrices (and as the LoRA reference implementation's MergedLinear does for GPT-2).
    """
    for pattern, part in PATTERNS.get(family, {}).values():
        if part is not None and re.search(pattern, target.name):
            return target.slices if target.slices is not None else tuple(range(FUSED_PARTS))
    return None


def output_blocks(d_out: int, slices: Sequence[int] | None) -> list[tuple[str | None, int, int]]:
    """Partition of the output columns: (block key, or None for a frozen block, start, stop)."""
    if slices is None:
        return [(WHOLE, 0, d_out)]
    if d_out % FUSED_PARTS:
        raise ValueError(f"fused module output {d_out} is not divisible into {FUSED_PARTS} parts")
    w = d_out // FUSED_PARTS
    return [(SLICE_NAMES[i] if i in slices else None, i * w, (i + 1) * w) for i in range(FUSED_PARTS)]
