"""``hut`` and ``hut_compact``: injection into a model, merge/unmerge, and Adam's eps mapping.

Why the rank barely matters (Table 5): ∂L/∂M_A[i, l] = (1/r)·∂L/∂a_i for every l, so all entries of a
row get the same gradient and, under any per-coordinate optimiser, the same update; the function only
ever depends on the means. Under Adam/AdamW (decoupled weight decay included) the mean a_i follows
exactly the update of a single parameter a_i trained with the same lr and weight decay but with
Adam's eps multiplied by r (m and sqrt(v) of each entry are those of ∂L/∂a_i divided by r).
``hut_compact`` is that single-parameter form: one vector a (d), b (k), γ (k), β (k) per matrix; with
``r: R`` it tags a and b with an eps scale R, and its :meth:`HutCompactMethod.param_groups` (which the
trainer calls for every method) then follows HUT rank R's trajectory up to float error.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import torch
import torch.nn as nn

from hut.methods.base import METHODS, Method
from hut.methods.hut.config import HutCompactConfig, HutConfig
from hut.methods.hut.layer import UNMERGE_ATTR, CompactFactors, Factors, HutFactors, HutLinear
from hut.methods.hut.reads import HostReads
from hut.methods.targets import fused_slices, linear_kind, replace_module, resolve_targets


def hut_layers(model: nn.Module) -> list[tuple[str, HutLinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, HutLinear)]


def merge_hut(model: nn.Module, keep_original: bool = True) -> nn.Module:
    """Replace every :class:`HutLinear` by its merged stock module (in place; returns ``model``)."""
    for name, layer in hut_layers(model):
        new = layer.merged_module(keep_original)
        if name == "":
            return new
        replace_module(model, name, new)
    return model


def unmerge_hut(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_hut` (merged with ``keep_original=True``): put the HUT layers back."""
    found = False
    for name, m in list(model.named_modules()):
        layer = m.__dict__.get(UNMERGE_ATTR)
        if layer is None:
            continue
        found = True
        layer.to(m.weight.device)
        if name == "":
            return layer
        replace_module(model, name, layer)
    if not found:
        raise ValueError("nothing to unmerge: no module merged by HUT with keep_original=True")
    return model


def adam_eps_scales(model: nn.Module) -> dict[int, float]:
    """id(parameter) -> Adam eps multiplier requested by its factors (compact a, b: the rank r)."""
    out: dict[int, float] = {}
    for m in model.modules():
        if isinstance(m, Factors):
            for pname, scale in m.eps_scales.items():
                p = getattr(m, pname, None)
                if isinstance(p, nn.Parameter) and scale != 1.0:
                    out[id(p)] = scale
    return out


def apply_eps_scales(param_groups: Iterable[Mapping[str, Any]] | Iterable[nn.Parameter], model: nn.Module,
                     eps: float) -> list[dict[str, Any]]:
    """Split optimiser param groups so that tagged parameters get ``eps × scale``.

    ``param_groups``: parameters, or dicts as ``torch.optim`` takes them. Groups without a tagged
    parameter come back unchanged (with ``eps`` set). ``hut_compact`` with ``r: R`` under
    ``AdamW(apply_eps_scales(groups, model, eps), eps=eps, ...)`` follows HUT rank R under
    ``AdamW(groups, eps=eps, ...)``.
    """
    groups = list(param_groups)
    if groups and not isinstance(groups[0], Mapping):
        groups = [{"params": groups}]
    scales = adam_eps_scales(model)
    out: list[dict[str, Any]] = []
    for g in groups:
        by_scale: dict[float, list] = {}
        for p in g["params"]:
            by_scale.setdefault(scales.get(id(p), 1.0), []).append(p)
        base_eps = g.get("eps", eps)
        for scale, ps in by_scale.items():
            out.append({**g, "params": ps, "eps": base_eps * scale})
    return out


@METHODS.register("hut")
class HutMethod(Method):
    """HUT as in the paper: M_A (d×r), M_B (r×k), γ, β per adapted matrix (options: :class:`HutConfig`)."""

    name = "hut"
    Config = HutConfig
    identity_at_init = True
    mergeable = True

    def _factory(self, base: nn.Module, gen: torch.Generator) -> Callable[[int, int], Factors]:
        c, w = self.config, base.weight
        return lambda d, k: HutFactors(d, k, c.r, init=c.init, init_std=c.init_std, generator=gen,
                                       device=w.device, dtype=w.dtype)

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        targets = resolve_targets(model, family, self.config.targets)
        # One draw from the global RNG whatever r, init or method (hut / hut_compact), so that the
        # rest of a run (dropout, data order) sees the same random stream across a rank ablation.
        seed = int(torch.randint(0, 2**62, (1,), device="cpu").item())
        gen = torch.Generator().manual_seed(seed)
        reads = HostReads()  # one per model: the backward reads every layer's decisions at once
        for t in targets:
            base = model.get_submodule(t.name)
            linear_kind(base)
            layer = HutLinear(base, fused_slices(family, t), self._factory(base, gen), bias_mode=self.config.bias_mode,
                              memory_efficient=self.config.memory_efficient, reads=reads)
            replace_module(model, t.name, layer)
        return model

    def merge(self, model: nn.Module, keep_original: bool = True) -> nn.Module:
        return merge_hut(model, keep_original=keep_original)

    def unmerge(self, model: nn.Module) -> nn.Module:
        return unmerge_hut(model)

    def param_groups(self, model: nn.Module, groups: list[dict[str, Any]], eps: float) -> list[dict[str, Any]]:
        return apply_eps_scales(groups, model, eps)  # a no-op for HUT itself (nothing is tagged)


@METHODS.register("hut_compact")
class HutCompactMethod(HutMethod):
    """HUT with the means as parameters: a (d), b (k), γ (k), β (k) per matrix (``form: split``).

    The same function as HUT at every rank, d + 3k parameters instead of d·r + r·k + 2k. Under
    Adam/AdamW, HUT rank r with eps ε moves each mean exactly as this form moves a, b with eps r·ε
    (same lr, same decoupled weight decay; γ and β are shared as they are): set ``r`` here to that
    rank and the trainer's optimiser (built through :meth:`param_groups`) reproduces HUT rank r step
    for step; with a plain optimiser (eps ε everywhere) this is HUT at r = 1. ``r`` never changes the
    parameter count. ``form: folded`` drops b (γ carries the whole output scale; three vectors,
    d + 2k): the same functions again, but a different trajectory, since HUT trains the product γ⊙b.
    """

    name = "hut_compact"
    Config = HutCompactConfig

    def _factory(self, base: nn.Module, gen: torch.Generator) -> Callable[[int, int], Factors]:
        c, w = self.config, base.weight
        return lambda d, k: CompactFactors(d, k, form=c.form, eps_scale=c.r, device=w.device, dtype=w.dtype)
