"""Device-to-host reads of one training step, per method: ``python -m hut.bench.host_reads [methods=[...]]``.

On a GPU every ``bool()``, ``.item()``, ``.tolist()`` of a device tensor (and every op whose output
size depends on the values, such as ``nonzero``) stalls the host until the device has caught up:
the queue of kernels drains and the GPU idles while the host launches the next ones. This module
counts them on the CPU, where the same calls happen (nothing needs a GPU), by what they call:

* through the dispatcher (a ``TorchDispatchMode``): ``aten._local_scalar_dense`` (``bool()``,
  ``.item()``, ``float()``, ``if tensor:``), ``nonzero``, ``masked_select``, the ``unique`` ops,
  ``equal``, and indexing with a boolean mask (``x[mask]``, ``x[mask] = v``);
* around it: ``Tensor.tolist`` and ``Tensor.numpy``, wrapped while counting.

Each row: one forward and backward (the task loss) of a small model built from config
(:mod:`hut.precision`'s width-256, 2-layer RoBERTa and GPT-2), the method applied and moved off its
init (:func:`hut.precision.move_as_trained`), every parameter named ``beta`` (HUT's shift) then
multiplied by ``shift`` so that it dominates the output (the path that recomputes ∂s); in float32 and
under CPU bf16 autocast. Printed: the reads the method adds to the frozen model's (the same model,
nothing adapted, its head and input embeddings trainable so that its backward runs through every
block), whose own count is the first row. ``hut (peft)`` is HUT through
``hut.peft`` (``get_peft_model``) on the same model.
"""
from __future__ import annotations

import contextlib
import sys
from collections import Counter
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
from peft import get_peft_model
from torch.utils._python_dispatch import TorchDispatchMode

import hut.peft
from hut import precision
from hut.config import cli_options
from hut.methods import METHODS
from hut.results.render.formats import markdown
from hut.runtime.device import DeviceUnavailable, resolve

READ_OPS = frozenset({"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_dim",
                      "unique_consecutive", "equal"})
MASK_INDEX_OPS = frozenset({"index", "index_put", "index_put_"})  # x[mask], x[mask] = v: sized by the mask
WRAPPED = ("tolist", "numpy")  # Tensor methods that read without the dispatcher
PEFT_ROW = "hut (peft)"
FROZEN_ROW = "frozen model"


class _Reads(TorchDispatchMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in READ_OPS or (name in MASK_INDEX_OPS and _has_mask(args[1])):
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


def _has_mask(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


@contextlib.contextmanager
def counting_host_reads() -> Iterator[Counter]:
    """A Counter (op or method name -> calls) of the device-to-host reads made inside the block."""
    counts: Counter = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in WRAPPED}

    def wrap(name: str, fn: Callable) -> Callable:
        def counted(self, *args, **kwargs):
            counts[name] += 1
            return fn(self, *args, **kwargs)
        return counted

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        with _Reads(counts):
            yield counts
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


def step_reads(model: nn.Module, batch: dict, dtype: torch.dtype | None) -> int:
    """Reads of one forward (autocast to ``dtype``; None: float32) and backward of ``model(**batch).loss``."""
    device = next(model.parameters()).device.type
    with counting_host_reads() as counts:
        with torch.autocast(device, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
    return sum(counts.values())


def grow_shift(model: nn.Module, factor: float) -> None:
    """Multiply every trainable parameter named ``beta`` (HUT's shift β) by ``factor``, in place."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and name.rpartition(".")[2] == "beta":
                p.mul_(factor)


def _batch(p) -> dict:
    if p.family == "gpt2":
        return {"input_ids": p.ids, "labels": p.ids}
    return {"input_ids": p.ids, "labels": torch.arange(p.ids.shape[0], device=p.ids.device) % 2}


def _frozen(p: precision.Prepared) -> nn.Module:
    """The prepared model with nothing trainable but its task head."""
    for q in precision.method_parameters(p):
        q.requires_grad_(False)
    return p.model


def _peft_hut(p: precision.Prepared) -> nn.Module:
    targets = {"gpt2": {"target_modules": ["c_attn"], "fused_slices": {"c_attn": ["q", "v"]}, "fan_in_fan_out": True},
               "bert": {"target_modules": ["query", "value"], "modules_to_save": list(p.head_prefixes)}}[p.family]
    return get_peft_model(_frozen(p), hut.peft.HutConfig(r=8, **targets))


def method_reads(method: str, family: str, shift: float, device: str = "cpu") -> dict[str, int]:
    """dtype name -> reads of one training step of ``method``: a registered name, or ``FROZEN_ROW`` / ``PEFT_ROW``."""
    out = {}
    for dt_name, dtype in (("float32", None), ("bf16", torch.bfloat16)):
        own = method not in (FROZEN_ROW, PEFT_ROW)
        p = precision.prepare(method if own else "ft", family, batch=4, seq=32, device=device)  # ft: refrozen below
        if method == FROZEN_ROW:  # its input embeddings trainable too: the backward runs through every block
            model = _frozen(p)
            model.get_input_embeddings().weight.requires_grad_(True)
        else:
            model = _peft_hut(p) if method == PEFT_ROW else p.model
            precision.move_as_trained(precision.Prepared(model, p.family, p.head_prefixes, p.ids))
            grow_shift(model, shift)
        out[dt_name] = step_reads(model.eval(), _batch(p), dtype)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = cli_options(sys.argv[1:] if argv is None else argv, "host_reads", "hut.bench.host_reads")
    families = list(args["families"])
    unknown = [f for f in families if f not in precision.FAMILIES]
    if unknown:
        raise SystemExit(f"hut.bench.host_reads: unknown families {unknown}; known: {', '.join(precision.FAMILIES)}")
    known = [*METHODS.names(), PEFT_ROW]
    methods = list(args["methods"] or known)
    if bad := [m for m in methods if m not in known]:
        raise SystemExit(f"hut.bench.host_reads: unknown methods {bad} (methods=); known: {', '.join(known)}")
    try:
        device = resolve(args["device"], key="device")
    except (ValueError, DeviceUnavailable) as e:
        raise SystemExit(f"hut.bench.host_reads: {e}") from None
    print(f"device-to-host reads of one forward + backward (task loss), added to the frozen model's; "
          f"small models of hut.precision, batch 4 x 32, parameters moved off init, beta x {args['shift']:g}, "
          f"on {device}\n", flush=True)
    dtypes = ("float32", "bf16")
    frozen = {f: method_reads(FROZEN_ROW, f, args["shift"], device) for f in families}
    rows = [[f"{FROZEN_ROW} (absolute)", *(str(frozen[f][d]) for f in families for d in dtypes)]]
    for m in methods:
        got = {f: method_reads(m, f, args["shift"], device) for f in families}
        rows.append([m, *(f"{got[f][d] - frozen[f][d]:+d}" for f in families for d in dtypes)])
        print(f"measured {m}", file=sys.stderr, flush=True)
    print(markdown(["method", *(f"{f} {d}" for f in families for d in dtypes)], rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
