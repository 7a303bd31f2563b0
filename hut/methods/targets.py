"""Short target names (q, k, v, o, ffn_in, ffn_out) -> the modules of each architecture family.

GPT-2 keeps q, k and v fused in one ``Conv1D`` (``attn.c_attn``, output = [q | k | v]); there a
short name selects a *slice* of the fused output, so "q and v" adapts two thirds of c_attn and
leaves the k slice untouched.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch.nn as nn

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


def resolve_targets(model: nn.Module, family: str, targets: str | Iterable[str]) -> list[Target]:
    """The modules (and fused slices) named by ``targets``; a name matching nothing is an error."""
    if family not in PATTERNS:
        raise ValueError(f"no target names for model family '{family}'; known: {sorted(PATTERNS)}")
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


def target_module_names(targets: Sequence[Target]) -> list[str]:
    return [t.name for t in targets]
