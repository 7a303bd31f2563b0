"""HUT on one frozen Linear/Conv1D as functions of its weight, bias and vectors: the one implementation.

:class:`hut.methods.hut.layer.HutLinear` (the suite's methods) and :class:`hut.peft.layer.HutLayer`
(HUT as a peft method) both compute their forward with :func:`hut_linear` and their merge with
:func:`merged_weights`; they differ only in where the factors live and how a model is wrapped.

``blocks``: the layer's output columns as ``(key, start, stop)``, key None for a frozen block (a
slice of GPT-2's fused ``c_attn`` that is not adapted). :func:`assemble` turns them and the factors
into the ``spec`` and flat ``vecs`` the autograd functions take: ``(start, stop, j)`` with ``j`` the
block's vector triple ``(a, s, t)`` in ``vecs`` (``-1``: frozen).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from hut.methods.hut.function import FoldedWeight, ScaledActivations, fold_weight, frozen_block, scaled_block
from hut.methods.hut.reads import HostReads

BlockList = Sequence[tuple[str | None, int, int]]
Vectors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def block_vectors(factors: nn.Module, b0: torch.Tensor | None, start: int, stop: int, bias_mode: str) -> Vectors:
    """(a, s, t) of one block in float: y = s ⊙ (x·diag(a)·W [+ b0 if bias inside]) + t.

    ``factors``: a :class:`hut.methods.hut.layer.Factors` (``vectors()`` -> a, b or None, γ, β).
    """
    a, b, gamma, beta = factors.vectors()
    s = gamma * b if b is not None else gamma
    t = gamma * b0[start:stop] + beta if bias_mode == "keep" and b0 is not None else beta
    return a, s, t


def assemble(blocks: BlockList, vectors: Callable[[int, int, str], Vectors]) -> tuple[list, list]:
    """(spec, vecs) for the autograd functions; ``vectors(start, stop, key)`` gives a block's (a, s, t)."""
    spec: list[tuple[int, int, int]] = []
    vecs: list[torch.Tensor] = []
    for key, start, stop in blocks:
        if key is None:
            spec.append((start, stop, -1))
            continue
        spec.append((start, stop, len(vecs) // 3))
        vecs.extend(vectors(start, stop, key))
    return spec, vecs


def _coarser(a: torch.dtype, b: torch.dtype) -> bool:
    return a.is_floating_point and b.is_floating_point and torch.finfo(a).eps > torch.finfo(b).eps


def hut_linear(x: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None, spec, vecs, *, bias_mode: str,
               memory_efficient: bool, reads: HostReads, path: str = "auto") -> torch.Tensor:
    """The adapted layer's output for input ``x`` (``W``: the frozen weight as d_in×d_out).

    The compute dtype is autocast's (if on for x's device) or else the weight's. Where it is coarser
    than the vectors' (bf16/fp16 autocast; a bf16 model with float32 factors) the scales are folded
    into the weight before its one rounding (:class:`FoldedWeight`); else the activations are scaled
    (:class:`ScaledActivations`). ``path="folded"`` folds in every dtype (the bench's alternative).
    ``memory_efficient=False`` computes the same with plain autograd (the tests' reference).
    """
    lead = x.shape[:-1]
    x2 = x.reshape(-1, W.shape[0])
    dev = x.device.type
    autocast = torch.is_autocast_enabled(dev)
    compute = torch.get_autocast_dtype(dev) if autocast else W.dtype
    low = _coarser(compute, vecs[0].dtype if vecs else W.dtype)
    needs_grad = torch.is_grad_enabled() and (x2.requires_grad or any(v.requires_grad for v in vecs))
    fast = memory_efficient and needs_grad and not W.requires_grad
    inside = bias_mode == "scale"
    if low or path == "folded":
        dtype = compute if low else W.dtype
        if fast:
            y = FoldedWeight.apply(x2, W, bias, tuple(spec), inside, reads, dtype, *vecs)
        else:
            with torch.autocast(dev, enabled=False):
                Wf, c = fold_weight(W, bias, spec, inside, vecs, dtype)
                y = torch.addmm(c.to(dtype), x2.to(dtype), Wf)
    else:
        x2 = x2.to(W.dtype)
        if fast:
            y = ScaledActivations.apply(x2, W, bias, tuple(spec), inside, reads, *vecs)
        else:
            outs = []
            for start, stop, j in spec:
                Wb, bb = W[:, start:stop], bias[start:stop] if bias is not None else None
                outs.append(frozen_block(x2, Wb, bb) if j < 0 else
                            scaled_block(x2, Wb, bb, *vecs[3 * j : 3 * j + 3], inside)[1])
            y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
    return y.view(*lead, W.shape[1])


@torch.no_grad()
def merged_weights(W: torch.Tensor, b0: torch.Tensor | None, spec, vecs,
                   bias_mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_merged as d_in×d_out, bias) in float (at least float32): the layer's function as one affine map.

    ``(W ⊙ a) ⊙ s`` per adapted block, the order the folded forward rounds, so that a merged model
    under autocast computes the unmerged one's numbers bit for bit. A bias is returned even where the
    layer has none (the shift needs one).
    """
    fdt = torch.promote_types(W.dtype, torch.float32)
    Wm = W.detach().to(fdt).clone()
    bm = b0.detach().to(fdt).clone() if b0 is not None else torch.zeros(W.shape[1], dtype=fdt, device=W.device)
    for start, stop, j in spec:
        if j < 0:
            continue
        a, s, t = (v.detach().to(fdt) for v in vecs[3 * j : 3 * j + 3])
        Wm[:, start:stop] = a[:, None] * W[:, start:stop].to(fdt) * s[None, :]
        bm[start:stop] = s * bm[start:stop] + t if bias_mode == "scale" else t
    return Wm, bm


def stock_module(base: nn.Module, Wm: torch.Tensor, bm: torch.Tensor) -> nn.Module:
    """A new ``nn.Linear``/``Conv1D`` like ``base`` (dtypes, trainability, mode) with weight Wm (d_in×d_out), bias bm."""
    d_in, d_out = Wm.shape
    is_conv = isinstance(base, Conv1D)
    with torch.device("meta"):
        new = Conv1D(d_out, d_in) if is_conv else nn.Linear(d_in, d_out)
    wdt = base.weight.dtype
    new.weight = nn.Parameter((Wm if is_conv else Wm.t()).to(wdt).contiguous(), requires_grad=base.weight.requires_grad)
    b0 = base.bias
    new.bias = nn.Parameter(bm.to(b0.dtype if b0 is not None else wdt),
                            requires_grad=b0.requires_grad if b0 is not None else False)
    new.train(base.training)
    return new
